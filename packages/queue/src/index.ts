export * from './catalog.js';
export * from './connection.js';
export * from './flow.js';
export * from './health.js';
export * from './heartbeat.js';
export * from './logger.js';
export * from './queues.js';
export * from './worker.js';
export { UnrecoverableError } from 'bullmq';
