export { openKafkaLog, type KafkaLogOptions } from './adapter.js';
export { staticAssigner } from './assigner.js';
