// Entry of the audit reader thread. The package runs its TypeScript through tsx with no build
// step; a worker starts with a fresh module loader, so it registers tsx itself before loading the
// reader (harmless when the parent's --import tsx was inherited too).
import { register } from 'tsx/esm/api';

register();
await import('./reader-thread.ts');
