/**
 * manifest.json: what a personalization was made from and with (backbone and its fingerprint, tokens,
 * class words, options, versions) and how far it got. Learned tensors are only meaningful on the exact
 * backbone they were trained on, so the fingerprint is checked when they are loaded again.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { TINY_BUNDLE_FACTS } from '@dynasyn/diffusion';
import type { PresetName } from '../types.js';
import { ArtifactError } from './errors.js';
import { readJsonObject, writeJsonAtomic } from './json-file.js';
import { artifactPath } from './layout.js';

export const MANIFEST_FORMAT = 'dynasyn-personalization';
export const MANIFEST_VERSION = 1;

/**
 * Identity of a backbone bundle without hashing gigabytes: model_index.json's hash, every file's size, and a hash
 * of evenly spaced samples of each file's bytes.
 */
export interface BackboneFingerprint {
  /** sha256 (hex) of model_index.json. */
  modelIndexSha256: string;
  /** Size in bytes of each file of the bundle, by path relative to the bundle (`unet/model.onnx`). */
  fileSizes: Record<string, number>;
  /**
   * sha256 (hex) of SAMPLE_CHUNKS evenly spaced chunks of SAMPLE_CHUNK_BYTES of each file (the whole file when it is
   * no larger), by the same paths: weights of the same size but other values (another seed, a fine-tune of the
   * same architecture, a refined VAE) differ here. Manifests written before it have none; then sizes alone count.
   */
  fileSamples?: Record<string, string>;
}

/** How many chunks of a file the fingerprint hashes, and their size: 512 KiB read per file, whatever its size. */
export const SAMPLE_CHUNKS = 128;
export const SAMPLE_CHUNK_BYTES = 4096;

/**
 * sha256 of `SAMPLE_CHUNKS` chunks spread evenly from the file's first byte to its last (the whole file when it is
 * small). A change of the weights is caught when it reaches any chunk: a fine-tune changes every tensor, and a
 * tensor larger than size / SAMPLE_CHUNKS always contains one.
 */
export function sampleFileHash(file: string, size = statSync(file).size): string {
  const hash = createHash('sha256');
  if (size <= SAMPLE_CHUNKS * SAMPLE_CHUNK_BYTES) return hash.update(readFileSync(file)).digest('hex');
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(SAMPLE_CHUNK_BYTES);
    const last = size - SAMPLE_CHUNK_BYTES;
    for (let i = 0; i < SAMPLE_CHUNKS; i++) {
      const at = Math.floor((i * last) / (SAMPLE_CHUNKS - 1));
      const n = readSync(fd, chunk, 0, SAMPLE_CHUNK_BYTES, at);
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Stages a run has finished; a resumed or partial run lists what its directory already holds. `compose`: the
 * composed set (before GSA) is in `composed/`; `augment`: the finished augmented set (after GSA) is in `augmented/`.
 */
export type CompletedPhase = 'prepare' | 'compose' | 'augment' | 'phase1' | 'phase2' | 'sample' | 'evaluate' | 'report';

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** ISO 8601 time the run started. */
  createdAt: string;
  backbone: {
    /** Bundle directory as given (absolute). */
    path: string;
    fingerprint: BackboneFingerprint;
    /** True for a random-weight bundle (the tiny bundle): its images are noise by nature. */
    randomWeights: boolean;
  };
  /** Placeholder tokens `<asset0>`, ... in subject order. */
  tokens: string[];
  classWords: string[];
  /** Noun phrases of the subjects (the class word where none was given). */
  nounPhrases: string[];
  /** Width of a placeholder row (the text encoder's embedding width), once known. */
  embeddingDim?: number;
  preset: PresetName;
  seed: number;
  /** The resolved options of the run (DynasynOptions, as JSON). */
  options: unknown;
  /** Versions of this package, its @dynasyn dependencies' pins, onnxruntime-node and node. */
  packages: Record<string, string>;
  phasesCompleted: CompletedPhase[];
  /** Where the run differs from what its options asked, and why (e.g. a text encoder that took no adapters). */
  notes?: string[];
}

/**
 * Files of a bundle that no model reads: documentation, pictures, logs (a model card, a README, a preview, a
 * training log), and the measurements written beside a model (`metrics.json`: the toy-world judge's and CLIP's
 * accuracies, re-measured by `toyworld-judge --reevaluate` without touching a weight). Editing them must not make
 * a bundle "another backbone" for the concepts learned on it, so the fingerprint leaves them out, and a
 * fingerprint written before they were left out is compared without them.
 * Weights, configs and tokenizer files (external data may have any name) all count.
 */
export function isBundleDocumentation(relativePath: string): boolean {
  const name = relativePath.split('/').pop()!;
  return (
    /\.(md|markdown|rst|html?|png|jpe?g|gif|webp|svg|jsonl|gz)$/i.test(name) || /^(licen[cs]e|copying|notice)(\.|$)/i.test(name) || name === 'metrics.json'
  );
}

/**
 * Computes the fingerprint of a bundle directory: sizes, and samples of each file's bytes (512 KiB per file, so
 * milliseconds for SD 2.1's 5 GB); documentation left out.
 */
export function fingerprintBackbone(bundleDir: string): BackboneFingerprint {
  const index = join(bundleDir, 'model_index.json');
  if (!existsSync(index)) throw new ArtifactError('MISSING_ARTIFACT', `backbone ${bundleDir} has no model_index.json`);
  return { modelIndexSha256: createHash('sha256').update(readFileSync(index)).digest('hex'), ...fileFingerprints(bundleDir) };
}

/**
 * A model folder's identity (a CLIP or judge folder, any folder of model files): sha256 over its files' paths, sizes
 * and sampled bytes, documentation left out, as the backbone fingerprint takes them.
 */
export function folderFingerprint(dir: string): string {
  const { fileSizes, fileSamples } = fileFingerprints(dir);
  const names = Object.keys(fileSizes).sort();
  if (!names.length) throw new ArtifactError('MISSING_ARTIFACT', `${dir} holds no model file`);
  return createHash('sha256')
    .update(JSON.stringify(names.map((n) => [n, fileSizes[n], fileSamples[n]])))
    .digest('hex');
}

/** Sizes and sampled-byte hashes of the files under `root` (four levels deep, dot files and documentation left out). */
function fileFingerprints(root: string): Required<Pick<BackboneFingerprint, 'fileSizes' | 'fileSamples'>> {
  const fileSizes: Record<string, number> = {};
  const fileSamples: Record<string, string> = {};
  const walk = (dir: string, depth: number) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const full = join(dir, name);
      const st = statSync(full);
      if (st.isDirectory()) {
        if (depth < 3) walk(full, depth + 1);
      } else if (st.isFile()) {
        const rel = relative(root, full).split('\\').join('/');
        if (!isBundleDocumentation(rel)) {
          fileSizes[rel] = st.size;
          fileSamples[rel] = sampleFileHash(full, st.size);
        }
      }
    }
  };
  walk(root, 0);
  return { fileSizes, fileSamples };
}

/** Human-readable differences between two fingerprints (empty when they match). */
export function fingerprintDifferences(expected: BackboneFingerprint, actual: BackboneFingerprint): string[] {
  const out: string[] = [];
  if (expected.modelIndexSha256 !== actual.modelIndexSha256) out.push('model_index.json differs');
  const names = new Set([...Object.keys(expected.fileSizes), ...Object.keys(actual.fileSizes)].filter((n) => !isBundleDocumentation(n)));
  for (const n of [...names].sort()) {
    const a = expected.fileSizes[n],
      b = actual.fileSizes[n];
    if (a === undefined) out.push(`${n} is new`);
    else if (b === undefined) out.push(`${n} is missing`);
    else if (a !== b) out.push(`${n} has ${b} bytes, expected ${a}`);
    else {
      const was = expected.fileSamples?.[n],
        is = actual.fileSamples?.[n];
      if (was !== undefined && is !== undefined && was !== is) out.push(`${n} has the same size but other contents (other weights?)`);
    }
  }
  return out;
}

const readJsonIfAny = (file: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

/**
 * Whether a bundle has random weights: an explicit marker in model_index.json (`_random_weights`,
 * `_dynasyn_random_weights` or `_tiny` true), or the configs createTinyBundle writes (its exact sizes),
 * which no trained Stable Diffusion has.
 */
export function bundleHasRandomWeights(bundleDir: string): boolean {
  const index = readJsonIfAny(join(bundleDir, 'model_index.json'));
  if (!index) return false;
  if (index['_random_weights'] === true || index['_dynasyn_random_weights'] === true || index['_tiny'] === true) return true;
  const unet = readJsonIfAny(join(bundleDir, 'unet', 'config.json'));
  const text = readJsonIfAny(join(bundleDir, 'text_encoder', 'config.json'));
  const f = TINY_BUNDLE_FACTS;
  return (
    !!unet &&
    !!text &&
    JSON.stringify(unet['block_out_channels']) === JSON.stringify([...f.unet.blockOutChannels]) &&
    unet['sample_size'] === f.latentSize &&
    text['hidden_size'] === f.textEmbedDim &&
    text['num_hidden_layers'] === f.textEncoder.layers
  );
}

/** Versions recorded in the manifest: this package, its declared dependencies, and node. */
export function packageVersions(): Record<string, string> {
  const out: Record<string, string> = { node: process.versions.node };
  try {
    // src/output/ and dist/output/ are both two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
      dependencies?: Record<string, string>;
    };
    out[pkg.name] = pkg.version;
    for (const [k, v] of Object.entries(pkg.dependencies ?? {})) out[k] = v;
  } catch {
    /* a bundled build without package.json: node's version is still worth recording */
  }
  return out;
}

export interface NewManifestInput {
  backboneDir: string;
  tokens: string[];
  classWords: string[];
  nounPhrases?: string[];
  embeddingDim?: number;
  preset: PresetName;
  seed: number;
  options: unknown;
  /** Overrides detection (bundleHasRandomWeights). */
  randomWeights?: boolean;
  /** Default: now. */
  createdAt?: Date;
}

/** A manifest for a new run: fingerprints the backbone and records versions. */
export function createManifest(input: NewManifestInput): Manifest {
  if (input.tokens.length !== input.classWords.length) {
    throw new ArtifactError('ARTIFACT_MISMATCH', `manifest: ${input.tokens.length} tokens but ${input.classWords.length} class words`);
  }
  const path = resolve(input.backboneDir);
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    createdAt: (input.createdAt ?? new Date()).toISOString(),
    backbone: { path, fingerprint: fingerprintBackbone(path), randomWeights: input.randomWeights ?? bundleHasRandomWeights(path) },
    tokens: [...input.tokens],
    classWords: [...input.classWords],
    nounPhrases: input.nounPhrases ? [...input.nounPhrases] : [...input.classWords],
    ...(input.embeddingDim !== undefined ? { embeddingDim: input.embeddingDim } : {}),
    preset: input.preset,
    seed: input.seed,
    options: input.options,
    packages: packageVersions(),
    phasesCompleted: [],
  };
}

export function writeManifest(dir: string, manifest: Manifest): void {
  writeJsonAtomic(artifactPath(dir, 'manifest'), manifest);
}

/** Records that `phase` finished (idempotent) and rewrites the manifest. */
/** Adds `notes` (each once) to the manifest of `dir`. */
export function addManifestNotes(dir: string, notes: readonly string[]): Manifest {
  const m = readManifest(dir);
  const all = [...(m.notes ?? [])];
  for (const n of notes) if (!all.includes(n)) all.push(n);
  if (all.length) m.notes = all;
  writeManifest(dir, m);
  return m;
}

export function markPhaseCompleted(dir: string, phase: CompletedPhase): Manifest {
  const m = readManifest(dir);
  if (!m.phasesCompleted.includes(phase)) m.phasesCompleted.push(phase);
  writeManifest(dir, m);
  return m;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Reads and checks manifest.json of an output directory. */
export function readManifest(dir: string): Manifest {
  const file = artifactPath(dir, 'manifest');
  const m = readJsonObject(file, 'manifest');
  const bad = (why: string): never => {
    throw new ArtifactError('BAD_ARTIFACT', `manifest ${file}: ${why}`);
  };
  if (m['format'] !== MANIFEST_FORMAT) bad(`format is ${JSON.stringify(m['format'])}, expected "${MANIFEST_FORMAT}"`);
  if (m['version'] !== MANIFEST_VERSION) bad(`version ${JSON.stringify(m['version'])} is not supported (this build reads ${MANIFEST_VERSION})`);
  const backbone = m['backbone'] as Manifest['backbone'] | undefined;
  if (!backbone || typeof backbone.path !== 'string' || !backbone.fingerprint || typeof backbone.fingerprint.modelIndexSha256 !== 'string')
    bad('backbone.path / backbone.fingerprint missing');
  if (!isStringArray(m['tokens'])) bad('tokens must be an array of strings');
  if (!isStringArray(m['classWords'])) bad('classWords must be an array of strings');
  if ((m['tokens'] as string[]).length !== (m['classWords'] as string[]).length) bad('tokens and classWords differ in length');
  if (!isStringArray(m['phasesCompleted'])) bad('phasesCompleted must be an array of strings');
  return m as unknown as Manifest;
}
