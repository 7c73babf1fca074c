/** The model card written beside the trained bundle: what it was trained on, how, how long, on what machine. */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { SdBundleConfig } from '@dynasyn/diffusion';
import { textEncoderParameterCount, unetParameterCount, vaeParameterCounts } from '@dynasyn/diffusion';
import { CLI_DEFAULTS, reproducingFlags } from './cli-defaults.js';
import type { DecoderRefine, TrainOptions } from './train.js';

/** How to train this bundle again from scratch: the command line, or why there is none. */
function reproduceLine(o: TrainOptions): string {
  const flags = reproducingFlags(o);
  if (!flags)
    return 'It was trained through the API with settings the CLI fixes otherwise (warmups, KL weight, empty captions, tokenizer captions or source), so no `npm run toyworld:train` command line reproduces it; its settings are below.';
  return `\`npm run toyworld:train${flags.length ? ` -- ${flags.join(' ')}` : ''}\` reproduces it from the seed below.`;
}

export interface RunSummary {
  options: TrainOptions;
  config: SdBundleConfig;
  /** The exported decoder's block_out_channels, when not the encoder's (config.vae's). */
  decoderChannels?: number[];
  scalingFactor: number;
  seconds: Record<string, number>;
  startedAt: string;
  /** The run's log (train-log.jsonl's text, each step's last line). */
  log: string;
  bundleDir: string;
  /** A run that continued another bundle's diffusion phase: that bundle, the first step of this run, its model card. */
  continued?: { from: string; stepOffset: number; vaeStepOffset?: number; refineVae?: number; previousCard: string; refinedDecoder?: DecoderRefine };
}

/** The text of a `## title` section of a markdown card (up to the next `## `), or ''. */
function section(card: string, title: string): string {
  const start = card.indexOf(`\n## ${title}`);
  if (start < 0) return '';
  const body = card.slice(start + 1);
  const end = body.indexOf('\n## ', 3);
  return (end < 0 ? body : body.slice(0, end)).trim();
}

interface LogLine {
  phase: string;
  step: number;
  loss: number;
  mse?: number;
  ms: number;
}

function lossSummary(lines: LogLine[], phase: string, fromStep = 0): string {
  const ls = lines.filter((l) => l.phase === phase && l.step >= fromStep);
  if (!ls.length) return 'no steps';
  const mean = (a: LogLine[]) => a.reduce((s, l) => s + l.loss, 0) / a.length;
  const k = Math.min(50, Math.max(1, Math.floor(ls.length / 10)));
  const ms = ls.map((l) => l.ms).sort((a, b) => a - b);
  return `loss ${mean(ls.slice(0, k)).toFixed(4)} (first ${k} steps) -> ${mean(ls.slice(-k)).toFixed(4)} (last ${k}); median step ${ms[Math.floor(ms.length / 2)]} ms`;
}

const dirBytes = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((s, e) => s + (e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);

/** `notes`: NOTES.md of the work directory, when there is one (what was seen in samples, changes made during the run). */
export function writeModelCard(file: string, r: RunSummary, partial?: { step: number }, notes?: string): void {
  const o = r.options;
  const lines = r.log
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogLine);
  const vae = vaeParameterCounts(r.config);
  const decCh = r.decoderChannels ?? r.config.vae.blockOutChannels;
  const wideDecoder = decCh.join() !== r.config.vae.blockOutChannels.join();
  const decoderCount = vaeParameterCounts({ ...r.config, vae: { ...r.config.vae, blockOutChannels: decCh } }).decoder;
  const counts = { unet: unetParameterCount(r.config), text_encoder: textEncoderParameterCount(r.config), vae_encoder: vae.encoder, vae_decoder: decoderCount };
  const u = r.config.unet,
    t = r.config.textEncoder,
    v = r.config.vae;
  const minutes = (s = 0) => `${(s / 60).toFixed(1)} min`;
  const cpu = cpus();
  const note = partial
    ? `\n**Partial: this bundle holds the weights after ${partial.step} of ${o.diffusion.steps} diffusion steps (the run was stopped for time; resuming it continues the schedule).**\n`
    : '';
  const c = r.continued;
  const sw = o.vae.subjectWeight ?? 1;
  const weighting = sw !== 1 ? `, the subjects' pixels (and the pixel around them) weighted ${sw}x in the MSE` : '';
  const dsw = o.diffusion.subjectWeight ?? 1;
  const epsWeighting = dsw !== 1 ? `, epsilon MSE with the subjects' latent cells weighted ${dsw}x` : '';
  const refined =
    c?.refineVae && c.vaeStepOffset !== undefined
      ? `- VAE refined (this bundle): encoder and decoder from that VAE, ${c.refineVae} more steps (VAE steps ${c.vaeStepOffset}-${c.vaeStepOffset + c.refineVae - 1}: the
  stream goes on), batch ${o.vae.batch}, fresh AdamW moments, lr ${o.vae.lr} (warmup ${o.vae.warmup}, cosine), clip 1.0, MSE + ${o.vae.klWeight} x KL${weighting};
  ${lossSummary(lines, 'vae', c.vaeStepOffset)}; ${minutes(r.seconds.vae)}. The latent space moved with it (scaling_factor
  ${r.scalingFactor.toPrecision(6)}): the continued text encoder and UNet below learned on the new latents.
`
      : '';
  const d = c?.refinedDecoder;
  const decoderRefined = d
    ? `- VAE decoder refined (this bundle): ${d.channels ? `a fresh decoder of block_out_channels [${d.channels}] (seeded)` : 'from that decoder'}, on its frozen encoder's latents (the latent space unchanged), ${d.steps} more steps (decoder
  steps ${d.stepOffset}-${d.stepOffset + d.steps - 1}: the stream goes on), batch ${d.batch}, fresh AdamW moments, lr ${d.lr} (warmup ${d.warmup}, cosine), clip 1.0, MSE${
    d.subjectWeight !== 1 ? ` with the subjects' pixels (and the pixel around them) weighted ${d.subjectWeight}x` : ''
  };
  ${lossSummary(lines, 'decoder', d.stepOffset)}; ${minutes(r.seconds.decoder)}.
`
    : '';
  const trained = c
    ? `${section(c.previousCard, 'How it was trained')
        .replace(/^## How it was trained[^\n]*/, '## How it was trained: the bundle it continues')
        .replace(/^- (Continued|VAE refined|VAE decoder refined) \(this bundle\)/gm, '- $1 (an earlier run)')
        // the earlier runs' steps are in this bundle's log, which is now stored gzipped
        .replace(/train-log\.jsonl(?!\.gz)/g, 'train-log.jsonl.gz')}
${refined}${decoderRefined}${
        // a refinement alone (--steps 0) keeps the text encoder and UNet as they were: no line for them
        o.diffusion.steps > 0
          ? `- Continued (this bundle): text encoder + UNet from those weights, ${o.diffusion.steps} more steps (diffusion steps ${c.stepOffset}-${c.stepOffset + o.diffusion.steps - 1}: the data
  stream goes on, no batch repeats), batch ${o.diffusion.batch}, fresh AdamW moments, lr ${o.diffusion.lr} (warmup ${o.diffusion.warmup}, cosine to a tenth),
  weight decay 0.01, clip 1.0${epsWeighting}; ${lossSummary(lines, 'diffusion', c.stepOffset)}; ${minutes(r.seconds.diffusion)} (started ${r.startedAt}),
  ${o.threads} intra-op threads on ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}. Per-step losses and times of both runs: train-log.jsonl.gz.
`
          : `- Text encoder + UNet (this bundle): those of the bundle it continues, unchanged (diffusion steps 0-${c.stepOffset - 1}).
`
      }`
    : `## How it was trained (seed ${o.seed})
- VAE: ${o.vae.steps} steps, batch ${o.vae.batch}, AdamW lr ${o.vae.lr} (warmup ${o.vae.warmup}, cosine), clip 1.0, MSE + ${o.vae.klWeight} x KL${weighting};
  ${lossSummary(lines, 'vae')}.
- VAE decoder fine-tuned on the frozen encoder's latents (the latent space unchanged): ${o.decoder.steps} steps, batch ${o.decoder.batch},
  AdamW lr ${o.decoder.lr} (warmup ${o.decoder.warmup}, cosine), MSE; ${lossSummary(lines, 'decoder')}.
- Text encoder + UNet jointly: ${o.diffusion.steps} steps, batch ${o.diffusion.batch}, AdamW lr ${o.diffusion.lr} (warmup ${o.diffusion.warmup}, cosine to a tenth),
  weight decay 0.01, clip 1.0, epsilon-prediction MSE${epsWeighting}; ${lossSummary(lines, 'diffusion')}.
- Time: VAE ${minutes(r.seconds.vae)}, decoder ${minutes(r.seconds.decoder)}, diffusion ${minutes(r.seconds.diffusion)} (started ${r.startedAt}), ${o.threads} intra-op threads on
  ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, shared with other work. Per-step losses and times: train-log.jsonl.gz.
`;
  // the continued bundle's notes, and the notes of the runs it continued in turn, oldest last
  const previousNotes = c
    ? [
        section(c.previousCard, 'Notes on this run').replace(/^## Notes on this run/, '## Notes on the run it continues'),
        c.previousCard.includes('\n## Notes on the run it continues')
          ? c.previousCard
              .slice(c.previousCard.indexOf('\n## Notes on the run it continues') + 1)
              .replace(/^## Notes on the run it continues/, '## Notes on the runs before it')
          : '',
      ]
        .filter(Boolean)
        .join('\n\n')
        .trim()
    : '';
  const text = `# Toy-world backbone
${note}
A Stable-Diffusion-shaped bundle trained from scratch by \`@dynasyn/toyworld-backbone\` with the project's own
training engine (\`@dynasyn/ort-training\`) on rendered scenes. ${
    c
      ? `\`npm run toyworld:train\` reproduces the first bundle of the chain below from its seed, each continuation's command the next one, then
\`npm run toyworld:train -- --continue-from <that bundle> --work <another directory>${continuationSettings(o)}${
          c.refineVae ? ` --refine-vae ${c.refineVae} --vae-batch ${o.vae.batch} --vae-lr ${o.vae.lr} --subject-weight ${sw}` : ''
        }${d ? ` --refine-decoder ${d.steps}${d.channels ? ` --decoder-channels ${d.channels.join(',')}` : ''} --decoder-batch ${d.batch} --decoder-lr ${d.lr}${d.subjectWeight !== 1 && !c.refineVae ? ` --subject-weight ${d.subjectWeight}` : ''}` : ''}${
          dsw !== 1 ? ` --diffusion-subject-weight ${dsw}` : ''
        } --steps ${o.diffusion.steps} --lr ${o.diffusion.lr}\` this one.`
      : reproduceLine(o)
  }

## What it was trained on
${o.source.description}. ${o.diffusion.emptyCaption * 100}% of the diffusion phase's captions are empty, so
classifier-free guidance works. Held-out identities (the renderer's list) never appear in training.

## What it knows, what it cannot draw
It draws what the captions above describe, at ${r.config.sampleSize}x${r.config.sampleSize} px, as well as
${(r.continued?.stepOffset ?? 0) + o.diffusion.steps} steps of batch ${o.diffusion.batch} allow: flat colours and silhouettes first, patterns and
accessories less reliably, small details (faces, accessories on small subjects) least. It knows no word outside
the world's captions (its tokenizer splits them into pieces it never trained on); it cannot draw real photographs,
text, or subjects, colours, contexts and styles the world does not have. The judge's figures, where measured,
are in packages/toyworld-backbone/README.md.

## Architecture (diffusers / transformers structure, optimum's ONNX layout)
- UNet2DConditionModel: block_out_channels [${u.blockOutChannels}], ${u.downBlockTypes.join(', ')}; heads ${u.attentionHeads};
  cross-attention at ${r.config.sampleSize / 4}x${r.config.sampleSize / 4} and ${r.config.sampleSize / 8}x${r.config.sampleSize / 8} (and the mid block); ${(counts.unet / 1e6).toFixed(2)} M parameters.
- CLIPTextModel: ${t.layers} layers, width ${t.hiddenSize}, ${t.heads} heads, ${t.maxPositions} tokens, vocabulary ${t.vocabSize}
  (byte-level BPE learned from the captions); ${(counts.text_encoder / 1e6).toFixed(2)} M parameters.
- AutoencoderKL: block_out_channels [${v.blockOutChannels}] (scale factor 4: latents ${r.config.latentChannels}x${r.config.sampleSize / 4}x${r.config.sampleSize / 4}),
  encoder ${(counts.vae_encoder / 1e6).toFixed(2)} M, decoder${wideDecoder ? ` (block_out_channels [${decCh}])` : ''} ${(counts.vae_decoder / 1e6).toFixed(2)} M parameters; scaling_factor ${r.scalingFactor.toPrecision(6)} (1 / std of the latents).
- Scheduler: DDIM config, scaled_linear betas 0.00085..0.012, 1000 steps, epsilon prediction. fp32 weights, ${(dirBytes(r.bundleDir) / 1e6).toFixed(1)} MB.

${trained}`;
  const withNotes = notes ? `${text}\n## Notes on this run\n${notes.trim()}\n` : text;
  writeFileSync(file, previousNotes ? `${withNotes}\n${previousNotes}\n` : withNotes);
}

/** A continuation's flags that are not the CLI's defaults and that no phase's own flags say (seed, preset, source, batch). */
function continuationSettings(o: TrainOptions): string {
  const d = CLI_DEFAULTS;
  return [
    o.seed !== d.seed ? ` --seed ${o.seed}` : '',
    o.preset !== d.preset ? ` --preset ${o.preset}` : '',
    o.source.name && o.source.name !== d.source ? ` --source ${o.source.name}` : '',
    o.diffusion.batch !== d.batch ? ` --batch ${o.diffusion.batch}` : '',
  ].join('');
}
