/**
 * Learned concepts on disk: embeddings.safetensors (placeholder rows [N * V, D], metadata `tokens`,
 * `classWords`, and `placeholderVectors` V when a token has several rows) and adapters.safetensors (adapter tensors, metadata `adapterSpec`). Reading checks them
 * against manifest.json, and against the backbone when one is given, because rows and adapters are only
 * meaningful on the model they were trained on.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { DataType, readSafetensors, writeSafetensors, type HostTensor } from '@dynasyn/ort-training';
import type { AdapterSpec, LearnedConcepts } from '../types.js';
import { ArtifactError } from './errors.js';
import { artifactPath } from './layout.js';
import { fingerprintBackbone, fingerprintDifferences, readManifest } from './manifest.js';

/** Name of the [N, D] tensor in embeddings.safetensors. */
export const EMBEDDINGS_TENSOR = 'embeddings';

/** Writes embeddings.safetensors and adapters.safetensors (the latter also when empty: phase 1 only). */
export function writeLearnedConcepts(dir: string, concepts: LearnedConcepts): void {
  const { tokens, classWords, embeddings, adapters, adapterSpec } = concepts;
  const V = concepts.placeholderVectors ?? 1;
  if (!Number.isInteger(V) || V < 1) throw new ArtifactError('ARTIFACT_MISMATCH', `placeholderVectors must be a positive integer, got ${V}`);
  if (embeddings.dims.length !== 2 || embeddings.dims[0] !== tokens.length * V) {
    throw new ArtifactError(
      'ARTIFACT_MISMATCH',
      `embeddings are [${embeddings.dims.join(',')}], expected [${tokens.length * V}, D] for ${tokens.length} tokens${V > 1 ? ` of ${V} vectors` : ''}`,
    );
  }
  if (classWords.length !== tokens.length) throw new ArtifactError('ARTIFACT_MISMATCH', `${tokens.length} tokens but ${classWords.length} class words`);
  checkAdapters(adapters, adapterSpec, 'adapters to write');
  mkdirSync(dir, { recursive: true });
  writeSafetensors(
    artifactPath(dir, 'embeddings'),
    { [EMBEDDINGS_TENSOR]: embeddings },
    {
      tokens: JSON.stringify(tokens),
      classWords: JSON.stringify(classWords),
      // absent for one row per token, so one-vector artifacts read the same by older readers
      ...(V > 1 ? { placeholderVectors: String(V) } : {}),
    },
  );
  writeSafetensors(artifactPath(dir, 'adapters'), adapters, { adapterSpec: JSON.stringify(adapterSpec) });
}

export interface ReadConceptsOptions {
  /** When given, the backbone's fingerprint must equal the manifest's. */
  backboneDir?: string;
}

/** Reads what writeLearnedConcepts wrote, validated against manifest.json (and the backbone, if given). */
export function readLearnedConcepts(dir: string, options: ReadConceptsOptions = {}): LearnedConcepts {
  const manifest = readManifest(dir);
  const embFile = artifactPath(dir, 'embeddings');
  if (!existsSync(embFile)) throw new ArtifactError('MISSING_ARTIFACT', `${embFile} does not exist (training has not finished phase 1?)`);
  const emb = readArtifact(embFile);
  const embeddings = emb.tensors.get(EMBEDDINGS_TENSOR);
  if (!embeddings)
    throw new ArtifactError('BAD_ARTIFACT', `${embFile} has no tensor "${EMBEDDINGS_TENSOR}" (it has ${[...emb.tensors.keys()].join(', ') || 'none'})`);
  const tokens = jsonMeta<string[]>(emb.metadata, 'tokens', embFile);
  const classWords = jsonMeta<string[]>(emb.metadata, 'classWords', embFile);
  const mismatch = (why: string): never => {
    throw new ArtifactError('ARTIFACT_MISMATCH', `${embFile} does not match manifest.json: ${why}`);
  };
  if (JSON.stringify(tokens) !== JSON.stringify(manifest.tokens)) mismatch(`tokens ${JSON.stringify(tokens)} vs ${JSON.stringify(manifest.tokens)}`);
  if (JSON.stringify(classWords) !== JSON.stringify(manifest.classWords))
    mismatch(`class words ${JSON.stringify(classWords)} vs ${JSON.stringify(manifest.classWords)}`);
  const vectorsMeta = emb.metadata.placeholderVectors;
  const V = vectorsMeta === undefined ? 1 : Number(vectorsMeta);
  if (!Number.isInteger(V) || V < 1)
    throw new ArtifactError('BAD_ARTIFACT', `${embFile}: metadata "placeholderVectors" ${JSON.stringify(vectorsMeta)} is not a positive integer`);
  if (embeddings.dtype !== DataType.FLOAT || embeddings.dims.length !== 2 || embeddings.dims[0] !== tokens.length * V) {
    mismatch(
      `embeddings are [${embeddings.dims.join(',')}] (dtype ${embeddings.dtype}), expected float32 [${tokens.length * V}, D]${V > 1 ? ` (${tokens.length} tokens of ${V} vectors)` : ''}`,
    );
  }
  if (manifest.embeddingDim !== undefined && embeddings.dims[1] !== manifest.embeddingDim)
    mismatch(`row width ${embeddings.dims[1]}, manifest says ${manifest.embeddingDim}`);

  let adapters = new Map<string, HostTensor>();
  let adapterSpec: AdapterSpec[] = [];
  const adFile = artifactPath(dir, 'adapters');
  if (existsSync(adFile)) {
    const ad = readArtifact(adFile);
    adapters = ad.tensors;
    adapterSpec = jsonMeta<AdapterSpec[]>(ad.metadata, 'adapterSpec', adFile);
    checkAdapters(adapters, adapterSpec, adFile);
  }
  if (options.backboneDir !== undefined) {
    const diff = fingerprintDifferences(manifest.backbone.fingerprint, fingerprintBackbone(options.backboneDir));
    if (diff.length) {
      throw new ArtifactError(
        'ARTIFACT_MISMATCH',
        `backbone ${options.backboneDir} is not the one ${dir} was trained on (${manifest.backbone.path}): ${diff.slice(0, 5).join('; ')}${diff.length > 5 ? '; ...' : ''}`,
      );
    }
  }
  return { tokens, classWords, embeddings, ...(V > 1 ? { placeholderVectors: V } : {}), adapters, adapterSpec };
}

function readArtifact(file: string): ReturnType<typeof readSafetensors> {
  try {
    return readSafetensors(file);
  } catch (e) {
    throw new ArtifactError('BAD_ARTIFACT', `${file}: ${(e as Error).message}`, { cause: e });
  }
}

function jsonMeta<T>(metadata: Record<string, string>, key: string, file: string): T {
  const text = metadata[key];
  if (text === undefined) throw new ArtifactError('BAD_ARTIFACT', `${file} has no "${key}" metadata`);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new ArtifactError('BAD_ARTIFACT', `${file}: metadata "${key}" is not JSON`, { cause: e });
  }
}

/**
 * Every spec's A and B exist with matching rank ([in, r] and [r, out]). Tensors named by no spec are
 * allowed: 'full' mode stores trained weights under their initializer names.
 */
function checkAdapters(adapters: Map<string, HostTensor>, spec: AdapterSpec[], what: string): void {
  const bad = (why: string): never => {
    throw new ArtifactError('ARTIFACT_MISMATCH', `${what}: ${why}`);
  };
  if (!Array.isArray(spec)) bad('adapterSpec is not an array');
  for (const s of spec) {
    if (!s || typeof s.weight !== 'string' || typeof s.a !== 'string' || typeof s.b !== 'string' || typeof s.scale !== 'number')
      bad(`malformed adapter spec ${JSON.stringify(s)}`);
    const a = adapters.get(s.a),
      b = adapters.get(s.b);
    if (!a || !b) bad(`adapter of ${s.weight} (${s.model}) needs tensors ${s.a} and ${s.b}; missing ${!a ? s.a : s.b}`);
    if (a!.dims.length !== 2 || b!.dims.length !== 2 || a!.dims[1] !== b!.dims[0]) {
      bad(`adapter of ${s.weight}: A [${a!.dims.join(',')}] and B [${b!.dims.join(',')}] are not [in, r] and [r, out]`);
    }
  }
}
