export { ThreadLog } from './client.js';
export { serveLog, type ServedLog } from './server.js';
