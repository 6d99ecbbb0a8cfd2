export { createPostgresEngine } from './engine.js';
