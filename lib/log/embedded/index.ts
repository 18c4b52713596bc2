export { openEmbeddedLog, EmbeddedLog } from './log.js';
export type { EmbeddedLogOptions, Clock, ConsumerErrorContext } from './options.js';
export type { FsyncPolicy, CompactionResult } from './partition.js';
