export {
  databaseEnv,
  queueEnv,
  storageEnv,
  localStorageEnv,
  logEnv,
  shutdownEnv,
  stageEnv,
  httpEnv,
  webhookEnv,
  webhookAllowCidrs,
  stageLeaseSeconds,
  checkStageLease,
  LOOPBACK_CIDRS,
  localStorageUrl,
  type DatabaseEnv,
  type QueueEnv,
  type StorageEnv,
  type LogEnv,
  type ShutdownEnv,
  type StageEnv,
  type StageTimesEnv,
  type WebhookEnv,
} from './pieces.js';
export { optional, flag, count, seconds } from './values.js';
export { EnvError, parseEnvironment } from './parse.js';
export { s3OptionsFrom } from './s3.js';
