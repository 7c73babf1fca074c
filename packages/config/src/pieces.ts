/**
 * The environment pieces the apps share, each defined once: an app's src/env.ts spreads the pieces it needs
 * into its own schema (`z.object({ ...databaseEnv.shape, ...queueEnv.shape, ... })`). Why each default is
 * what it is: README.md.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LOG_LEVELS } from '@dynasyn/logger';
import { z } from 'zod';
import { EnvError } from './parse.js';
import { count, emptyIsUnset, flag, optional, seconds } from './values.js';

export const databaseEnv = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be postgres://user@host:port/db'),
});

export const queueEnv = z.object({
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be redis://host:port[/db]')
    .default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix (and the API's rate-limit prefix): several deployments or test runs share one Redis. */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
    .default('dynasyn'),
});

const storageUrl = z.string().regex(/^(s3|file):\/\//, 'must be s3://bucket/prefix or file:///dir');

/**
 * Where blobs live. STORAGE_URL is required: a deployed API or worker that quietly stored artifacts on its own
 * disk would lose them; only the single-machine `dynasyn serve` defaults it (localStorageEnv).
 */
export const storageEnv = z.object({
  /** `s3://bucket/prefix` (with the AWS variables and S3_ENDPOINT) or `file:///dir`. */
  STORAGE_URL: z.preprocess(emptyIsUnset, storageUrl),
  /** S3-compatible servers only (MinIO, R2, s3rver); unset for AWS S3. */
  S3_ENDPOINT: optional(z.string().url()),
  AWS_REGION: optional(z.string()),
  /** Static credentials; both or neither (then the AWS SDK's default provider chain). */
  AWS_ACCESS_KEY_ID: optional(z.string()),
  AWS_SECRET_ACCESS_KEY: optional(z.string()),
});

/** The local store of a single-machine setup: `.dynasyn/storage` under the working directory. */
export function localStorageUrl(cwd: string): string {
  return pathToFileURL(path.resolve(cwd, '.dynasyn/storage')).href;
}

/** storageEnv of a single-machine process (`dynasyn serve`): STORAGE_URL defaults to localStorageUrl(cwd). */
export const localStorageEnv = storageEnv.extend({
  STORAGE_URL: z.preprocess(
    emptyIsUnset,
    storageUrl.default(() => localStorageUrl(process.cwd())),
  ),
});

export const logEnv = z.object({
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

export const shutdownEnv = z.object({
  /** On SIGTERM/SIGINT: seconds for requests to finish and running stages to checkpoint before exiting anyway. */
  SHUTDOWN_GRACE_SECONDS: seconds(20),
});

/** What a process running stage jobs needs (the stage workers, and `dynasyn serve`'s workers). */
export const stageEnv = z.object({
  /** A bundle directory, file:// or s3:// URL; default the tiny random-weight bundle made in the cache. */
  BACKBONE: optional(z.string()),
  /**
   * A CLIP folder (text_model.onnx + vision_model.onnx or model.onnx, and tokenizer/), file:// or s3:// URL, resolved
   * like BACKBONE: the sample stage scores its samples (CLIP-T / CLIP-I per prompt category); unset, no scores.
   */
  CLIP_MODEL: optional(z.string()),
  /**
   * A toy-world judge folder (judge.json, classifier.onnx, finder.onnx; models/toyworld-judge), file:// or s3:// URL,
   * resolved like CLIP_MODEL: the sample stage adds the judge's identity acc., attributes kept and prompt acc. per
   * prompt category to CLIP's scores, so it needs CLIP_MODEL; unset, no judge scores.
   */
  JUDGE_MODEL: optional(z.string()),
  DEVICE: z.enum(['cpu', 'cuda']).default('cpu'),
  /** onnxruntime intra-op threads per session; default onnxruntime's own choice. */
  THREADS: optional(z.coerce.number().int().min(1)),
  /**
   * The source of a stage job's BullMQ lock: the lock is min(this, 20) s (packages/stages worker-process.ts), and
   * work quiet for twice that lock with no live job in Redis is lost to the reconciler. Also the lease while
   * STAGE_LEASE_SECONDS is unset (stageLeaseSeconds).
   */
  STAGE_LOCK_SECONDS: count(5, 600),
  /**
   * A stage's lease in seconds (30 s to a day): running work with no write for longer is reported stuck (the API's
   * /metrics, /ops), and a live job whose attempt wrote nothing for longer is taken over by the reconciler. Unset:
   * STAGE_LOCK_SECONDS, the lease before the two were separate settings. Never shorter than STAGE_LOCK_SECONDS
   * (checkStageLease).
   */
  STAGE_LEASE_SECONDS: optional(z.coerce.number().int().min(30).max(86_400)),
});

/** The two stage times, as every app that reads them declares them (stageEnv). */
export type StageTimesEnv = Pick<z.output<typeof stageEnv>, 'STAGE_LOCK_SECONDS' | 'STAGE_LEASE_SECONDS'>;

/**
 * A stage's lease in seconds: STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when it is unset, so a deployment that
 * set only STAGE_LOCK_SECONDS (or neither: 600 s) keeps the lease it had when that one variable was both.
 */
export function stageLeaseSeconds(env: StageTimesEnv): number {
  return env.STAGE_LEASE_SECONDS ?? env.STAGE_LOCK_SECONDS;
}

/**
 * Refuses a lease shorter than STAGE_LOCK_SECONDS with an EnvError naming both; returns `env`. Each app calls it on
 * its parsed environment (a refinement would not survive the pieces being spread with `.shape`). Only a lease set
 * below the lock can fail it: unset, the lease is the lock.
 */
export function checkStageLease<T extends StageTimesEnv>(env: T): T {
  const lease = stageLeaseSeconds(env);
  if (lease < env.STAGE_LOCK_SECONDS)
    throw new EnvError([
      `STAGE_LEASE_SECONDS: ${lease} s is shorter than STAGE_LOCK_SECONDS (${env.STAGE_LOCK_SECONDS} s); the lease must be at least the lock: ` +
        `raise STAGE_LEASE_SECONDS or lower STAGE_LOCK_SECONDS (the job lock is min(STAGE_LOCK_SECONDS, 20) s, so 20 keeps it)`,
    ]);
  return env;
}

export const httpEnv = z.object({
  PORT: z.preprocess(emptyIsUnset, z.coerce.number().int().min(0).max(65535).default(3000)),
  HOST: z.string().default('0.0.0.0'),
});

/** `a.b.c.d/n`, `x:y::z/n`, or a bare address (one host). The webhooks package refuses the networks no list opens. */
function isCidr(entry: string): boolean {
  const [net = '', bits, extra] = entry.split('/');
  const family = isIP(net);
  if (!family || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

/** The loopback networks the deprecated WEBHOOK_ALLOW_PRIVATE=true stands for. */
export const LOOPBACK_CIDRS = ['127.0.0.0/8', '::1/128'] as const;

export const webhookEnv = z.object({
  /**
   * Private networks webhook receivers may live in, comma-separated CIDRs (`127.0.0.0/8,::1/128` for tests and
   * single-machine setups). Link-local (cloud metadata), multicast and broadcast stay refused even if listed.
   */
  WEBHOOK_ALLOW_CIDRS: z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : (v ?? []),
    z.array(z.string().refine(isCidr, { error: (i) => `${JSON.stringify(i.input)} is not a CIDR (a.b.c.d/n or x:y::z/n)` })),
  ),
  /** Deprecated: `true` reads as WEBHOOK_ALLOW_CIDRS=127.0.0.0/8,::1/128 (loopback only), with a warning at start. */
  WEBHOOK_ALLOW_PRIVATE: flag(false),
});

/**
 * The networks webhooks may reach beyond the public internet: WEBHOOK_ALLOW_CIDRS, plus loopback when the
 * deprecated WEBHOOK_ALLOW_PRIVATE is true; `deprecation` is the warning to log once at start then.
 */
export function webhookAllowCidrs(env: WebhookEnv): { cidrs: string[]; deprecation?: string } {
  if (!env.WEBHOOK_ALLOW_PRIVATE) return { cidrs: [...env.WEBHOOK_ALLOW_CIDRS] };
  return {
    cidrs: [...new Set([...env.WEBHOOK_ALLOW_CIDRS, ...LOOPBACK_CIDRS])],
    deprecation:
      'WEBHOOK_ALLOW_PRIVATE is deprecated and now opens loopback only (read as WEBHOOK_ALLOW_CIDRS=127.0.0.0/8,::1/128); list the networks your receivers live in with WEBHOOK_ALLOW_CIDRS instead',
  };
}

export type DatabaseEnv = z.output<typeof databaseEnv>;
export type QueueEnv = z.output<typeof queueEnv>;
export type StorageEnv = z.output<typeof storageEnv>;
export type LogEnv = z.output<typeof logEnv>;
export type ShutdownEnv = z.output<typeof shutdownEnv>;
export type StageEnv = z.output<typeof stageEnv>;
export type WebhookEnv = z.output<typeof webhookEnv>;
