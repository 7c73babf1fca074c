/**
 * The text encoder session: token ids [B,77] -> hidden states [B,77,D]. Ids go in the model's declared
 * int32/int64 type. With `placeholders: P` the model is rewritten by D4's surgery so that ids >= the
 * original vocabulary size read rows of a separate `[P,D]` input, fed per call (the trainable rows).
 */
import { DiffusionError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import type { ModelBundle, RuntimeOptions } from '../types.js';
import { floatInput, floatOutput, ModelSession, numberInput, type ValueSpec } from './session.js';
import { materialize, placeholderModel, removeTempDir, textEncoderModel } from './surgery.js';

export interface ClipTextEncoderOptions extends RuntimeOptions {
  /** Number of placeholder token rows (`<asset0>..`) to accept; default 0 (the model as exported). */
  placeholders?: number;
  /**
   * Directory for the rewritten model when placeholders are used and the encoder has external data;
   * default: a temporary directory removed on release. (Inline-weight encoders are loaded from bytes.)
   */
  cacheDir?: string;
  /** Rows of the tokenizer's base vocabulary, to pick the token-embedding table when the graph has several. */
  baseVocabSize?: number;
}

export class ClipTextEncoder {
  private constructor(
    private readonly session: ModelSession,
    private readonly ids: ValueSpec,
    private readonly out: ValueSpec,
    private readonly maxTokens: number,
    /** Placeholder rows input and its row count/width, when the model was rewritten. */
    private readonly placeholders?: { input: ValueSpec; count: number; dim: number },
    private readonly tempDir?: string,
  ) {}

  static async create(bundle: ModelBundle, options: ClipTextEncoderOptions = {}): Promise<ClipTextEncoder> {
    const count = options.placeholders ?? 0;
    if (!Number.isInteger(count) || count < 0) throw new DiffusionError('BAD_ARGUMENT', `placeholders must be a non-negative integer, got ${count}`);
    if (count === 0) {
      const s = await ModelSession.create(bundle.textEncoderPath, options);
      if (s.inputs.length === 1) return new ClipTextEncoder(s, s.input(['input_ids'], 'input_ids'), textOutput(s), bundle.maxTokens);
      // position_ids / attention_mask inputs: a copy that computes them from input_ids (surgery/text-inputs)
      await s.release();
      const rewritten = materialize(textEncoderModel(bundle), 'text_encoder_ids_only', options.cacheDir);
      try {
        const r = await ModelSession.create(rewritten.source, options, `${bundle.textEncoderPath} (ids only)`);
        return new ClipTextEncoder(r, r.input(['input_ids'], 'input_ids'), textOutput(r), bundle.maxTokens, undefined, rewritten.tempDir);
      } catch (e) {
        removeTempDir(rewritten.tempDir);
        throw e;
      }
    }
    const rewritten = placeholderModel(bundle, count, {
      ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
      ...(options.baseVocabSize !== undefined ? { baseVocabSize: options.baseVocabSize } : {}),
    });
    try {
      const s = await ModelSession.create(rewritten.source, options, `${bundle.textEncoderPath} (with ${count} placeholders)`);
      return new ClipTextEncoder(
        s,
        s.input(['input_ids'], 'input_ids'),
        textOutput(s),
        bundle.maxTokens,
        {
          input: s.input([rewritten.input], 'placeholder embeddings'),
          count,
          dim: bundle.textEmbedDim,
        },
        rewritten.tempDir,
      );
    } catch (e) {
      removeTempDir(rewritten.tempDir);
      throw e;
    }
  }

  /** Number of placeholder rows this encoder takes (0 without placeholders). */
  get placeholderCount(): number {
    return this.placeholders?.count ?? 0;
  }

  /**
   * ids: B rows of `maxTokens` ids (padded, e.g. ClipTokenizer.encodePadded); placeholderEmbeddings [P,D]
   * are required when the encoder was created with placeholders (start values: surgery's
   * placeholderStartValues).
   */
  async encode(ids: ReadonlyArray<ArrayLike<number>>, placeholderEmbeddings?: FloatTensor | Float32Array): Promise<FloatTensor> {
    const b = ids.length;
    if (b === 0) throw new DiffusionError('BAD_ARGUMENT', 'encode needs at least one row of token ids');
    const flat = new Float64Array(b * this.maxTokens);
    ids.forEach((row, i) => {
      if (row.length !== this.maxTokens)
        throw new DiffusionError(
          'BAD_ARGUMENT',
          `token row ${i} has ${row.length} ids; the text encoder takes ${this.maxTokens} (pad with ClipTokenizer.encodePadded)`,
        );
      for (let j = 0; j < row.length; j++) flat[i * this.maxTokens + j] = row[j]!;
    });
    const feeds = { [this.ids.name]: numberInput(flat, [b, this.maxTokens], this.ids) };
    if (this.placeholders) {
      const { count, dim, input } = this.placeholders;
      if (placeholderEmbeddings === undefined)
        throw new DiffusionError('BAD_ARGUMENT', `this text encoder takes ${count} placeholder rows: pass placeholderEmbeddings [${count},${dim}]`);
      const data = placeholderEmbeddings instanceof Float32Array ? placeholderEmbeddings : placeholderEmbeddings.data;
      if (data.length !== count * dim)
        throw new DiffusionError('BAD_ARGUMENT', `placeholder embeddings have ${data.length} values; expected [${count},${dim}]`);
      feeds[input.name] = floatInput({ dims: [count, dim], data }, input);
    } else if (placeholderEmbeddings !== undefined) {
      throw new DiffusionError(
        'BAD_ARGUMENT',
        'placeholder embeddings given to a text encoder created without placeholders (ClipTextEncoder.create(bundle, { placeholders: P }))',
      );
    }
    const res = await this.session.run(feeds, [this.out.name]);
    return floatOutput(res[this.out.name], this.out.name);
  }

  async release(): Promise<void> {
    await this.session.release();
    removeTempDir(this.tempDir);
  }
}

function textOutput(s: ModelSession): ValueSpec {
  return s.outputs.find((o) => o.name === 'last_hidden_state') ?? s.output(['last_hidden_state', 'hidden_states'], 'last_hidden_state');
}
