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
  rateLimitWindowMs: number;
  /** Allow webhook URLs that point at loopback or private addresses (tests, single-machine setups). */
  webhookAllowPrivate: boolean;
  /** Token that opens /ops; undefined: /ops is not served at all. */
  opsToken?: string;
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
  rateLimitWindowMs: 60_000,
  webhookAllowPrivate: false,
  presignExpiresSeconds: 3600,
  docs: true,
};
