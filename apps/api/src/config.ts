/** What the app needs to know beyond its dependencies; built from env.ts by index.ts, or by tests. */
export interface ApiConfig {
  /** Largest accepted file in an upload (image or mask), bytes. */
  maxUploadBytes: number;
  /** Largest accepted image, width x height (checked from the header before decoding). */
  maxImagePixels: number;
  /** Most subjects (masks) in one personalization. */
  maxSubjects: number;
  /** Requests per API key per window. */
  rateLimitMax: number;
  /** Requests per client address per window, counted before authentication (no key, wrong key, any key). */
  rateLimitAddressMax: number;
  rateLimitWindowMs: number;
  /** Private networks webhook URLs may point at (CIDRs); link-local, multicast and broadcast never. */
  webhookAllowCidrs: readonly string[];
  /** @deprecated Read webhookAllowCidrs. True when that list admits loopback (the old flag's remaining meaning). */
  webhookAllowPrivate: boolean;
  /** Token that opens /ops; undefined: /ops is not served at all. */
  opsToken?: string;
  /** Bearer token of /metrics (Prometheus); undefined: /metrics is not served. */
  metricsToken?: string;
  /**
   * A stage's lease (the workers' STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset): running work quiet for
   * longer is reported stuck.
   */
  stageLeaseSeconds: number;
  /** Lifetime of presigned artifact and sample URLs, seconds. */
  presignExpiresSeconds: number;
  /** Serve /docs (OpenAPI UI and JSON). */
  docs: boolean;
}

export const DEFAULT_CONFIG: ApiConfig = {
  maxUploadBytes: 20 * 1024 * 1024,
  maxImagePixels: 40e6,
  maxSubjects: 4,
  rateLimitMax: 600,
  rateLimitAddressMax: 1200,
  rateLimitWindowMs: 60_000,
  webhookAllowCidrs: [],
  webhookAllowPrivate: false,
  stageLeaseSeconds: 600,
  presignExpiresSeconds: 3600,
  docs: true,
};
