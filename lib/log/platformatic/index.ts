export { openPlatformaticLog, type PlatformaticLogOptions } from './adapter.js';
