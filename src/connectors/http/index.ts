/** The HTTP connector: a reverse proxy per connection on the shared HTTP listener. */
export { createHttpEngine } from './engine.js';
