/** The model cards written beside the trained judge and CLIP: what they are, how trained, what was measured. */
import { ATTRIBUTES, type JudgeEvaluation } from './evaluate.js';
import { SUBJECT_HEADS } from './heads.js';
import { LOGITS } from './heads.js';
import type { ClipDims } from './clip-net.js';
import type { ClipEvaluation } from './evaluate-clip.js';
import type { ClipMetrics } from './train-clip.js';
import type { JudgeMetrics } from './train-judge.js';
import type { TrainRunOptions } from './train-loop.js';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The attributes under 97% with true masks (ordinary and held-out), and what the own finder costs. */
function shortfalls(masks: JudgeEvaluation | undefined, heldOut: JudgeEvaluation | undefined, finder: JudgeEvaluation | undefined): string {
  if (!masks) return '- Not measured (the run was trained with --eval 0).';
  const short = ATTRIBUTES.filter((a) => masks.perAttribute[a].accuracy < 0.97);
  const lines = short.map(
    (a) => `- ${a}: ${pct(masks.perAttribute[a].accuracy)} with true masks${heldOut ? ` (held-out ${pct(heldOut.perAttribute[a].accuracy)})` : ''}.`,
  );
  if (!short.length) lines.push('- Every attribute reaches 97% with true masks.');
  lines.push(
    `- Identity (class, colour, pattern and accessory all kept): ${pct(masks.identity.accuracy)}${heldOut ? ` (held-out ${pct(heldOut.identity.accuracy)})` : ''}.`,
  );
  if (finder)
    lines.push(
      `- With its own finder instead of true masks: class ${pct(finder.perAttribute.class.accuracy)}, identity ${pct(finder.identity.accuracy)}. The finder's foreground is reliable; telling two subjects that touch or overlap (on top of, in front of, behind) apart is harder. The true-mask columns are the judge's reading, the own-finder ones what an evaluation without masks gets.`,
    );
  return lines.join('\n');
}

/** The leniency table: wrong values asked, how many the judge accepted (none when not measured). */
function leniencySection(m: JudgeMetrics): string {
  const sets = m.leniency ?? [];
  const masks = sets.find((l) => l.heldOut === 'exclude' && l.regions === 'masks')?.result;
  const finder = sets.find((l) => l.heldOut === 'exclude' && l.regions === 'judge')?.result;
  if (!masks && !finder) return '';
  const cell = (t: { accepted: number; total: number; rate: number } | undefined) => (t ? `${pct(t.rate)} (${t.accepted} of ${t.total})` : '-');
  const rows = SUBJECT_HEADS.filter((h) => masks?.[h] || finder?.[h]).map((h) => `| ${h} | ${cell(masks?.[h])} | ${cell(finder?.[h])} |`);
  return `## Asked a wrong value
The accuracy above is with the rendered values asked; a judge that accepted everything would read 100% there.
Here the same ordinary scenes are asked again, one attribute at a time, each subject's value replaced by another
one drawn at random (the rest as rendered): the share the judge accepts is how often it would call a subject kept
that is not. With its own finder the scorer keeps, of the partitions it offers, the one agreeing best with what
was asked, wrong ask included, so that column also holds what the choice costs.

| attribute asked wrong | accepted, true masks | accepted, own finder |
| --- | --- | --- |
${rows.join('\n')}
`;
}

export function judgeModelCard(m: JudgeMetrics, o: Pick<TrainRunOptions, 'seed' | 'lr'>): string {
  const col = (heldOut: string, regions: string): JudgeEvaluation | undefined =>
    m.evaluations.find((e) => e.heldOut === heldOut && e.regions === regions)?.result;
  const cols = [
    ['ordinary, true masks', col('exclude', 'masks')],
    ['ordinary, own finder', col('exclude', 'judge')],
    ['held-out, true masks', col('only', 'masks')],
    ['held-out, own finder', col('only', 'judge')],
  ] as const;
  const rows = [...ATTRIBUTES, 'identity (all four kept)'].map((a) => {
    const cells = cols.map(([, e]) => {
      if (!e) return '-';
      const t = a === 'identity (all four kept)' ? e.identity : e.perAttribute[a as (typeof ATTRIBUTES)[number]];
      return `${pct(t.accuracy)} (${t.total})`;
    });
    return `| ${a} | ${cells.join(' | ')} |`;
  });
  const first = cols.find(([, e]) => e)?.[1];
  return `# Toy-world judge

A ground-truth judge for the toy world (issue 13): it reads, from a 64x64 image and the region of a subject,
the subject's class, colour, pattern, accessory and action, the relation to a second subject, and the image's
context and style. \`scoreSample\` (packages/toyworld-judge) turns that into identity and prompt scores.

## Files
- \`classifier.onnx\`: crop [B,4,32,32] (a square around the subject asked about, region A, with a 30% margin,
  resampled: RGB as pixel/127.5 - 1 + region A), patch [B,4,32,32] (the 32x32 pixels around region A unresampled
  + region A) and scene [B,5,32,32] (the image at half size + regions A and B, B its partner or zeros) -> logits
  [B,${LOGITS}] (heads in judge.json's order; relation has "under" as the reverse of "on top of"). Strided CNNs
  (Conv, GroupNorm, SiLU), features pooled inside region A and over the image, MLP head. \`judgeInputs\` makes
  the three inputs from a 64x64 image and two regions.
- \`finder.onnx\`: image -> class_map [B,11,16,16]: per 4x4-pixel cell, logits of background or each class.
  Regions for generated images come from it (its foreground split into the subjects: regions.ts), from the
  personalization's attention maps, or from masks: the scorer takes the region source as an option.
- \`judge.json\` (label lists, normalisation), \`metrics.json\`, \`train-log.jsonl\` (one line per step).

## How it was trained
packages/ort-training (derived backward graph, AdamW, global-norm clip 1, weight decay 0.01, warmup then
cosine to a tenth${m.restart ? `, a warm restart at step ${m.restart.at} to ${m.restart.lr} (cosine again)` : ''}), peak lr ${o.lr},
${m.steps} steps of batch ${m.batch}, seed ${o.seed}, ${m.threads} thread(s), on renders
drawn fresh for every step, never a held-out identity. Loss: softmax cross-entropy of every head (targets
one-hot; the relation only with a partner) plus the finder's per-cell cross-entropy against the cells'
class fractions. Regions during training: the true mask (40%), or the mask averaged over 4x4 (30%) or 8x8
(30%) cells, so coarse regions (finder, attention) read as well. ${m.parameters.toLocaleString('en-US')} parameters.
The steps took ${m.trainMinutes.toFixed(1)} minutes on the shared 2-core machine (under other jobs' load).
Command: \`npm run toyworld:judge -- --only judge\` (the defaults; \`--help\` lists them).

## Accuracy on fresh renders
Scenes drawn from a seed stream no training step used (${first ? first.scenes : '?'} per column, scenes with a fully hidden subject left out);
held-out: every subject one of the 20 held-out identities. Through \`scoreSample\` with the scenes' full labels asked.
The own-finder columns take the regions from the finder (its foreground, split into the subjects: regions.ts).

| attribute | ${cols.map(([c]) => c).join(' | ')} |
| --- | ${cols.map(() => '---').join(' | ')} |
${rows.join('\n')}

${leniencySection(m)}
## Where it falls short of issue 13's >= 97%
${shortfalls(col('exclude', 'masks'), col('only', 'masks'), col('exclude', 'judge'))}
- The first judge (no patch input: pattern read only from the resampled crop; 2,600 steps) read pattern at 64.8%
  with true masks (held-out 49.0%): it took most stripes for checks. The patch input shows the texture unresampled.

## Limits
- 64x64 renders of this world only; a subject hidden behind another one for most of its pixels is hard to read.
- With the finder, two subjects are offered as partitions of its foreground: its two largest parts (when it has
  several), and splits of the whole foreground by the asked classes' maps and at its centre across each axis (for
  subjects that touch or overlap), each in both assignments; the scorer keeps the one the classifier agrees with
  best with the asked labels. The figures above are of the region logic of the code that wrote this card: \`npm run toyworld:judge -- --reevaluate\`
  re-measures them after it changes.
`;
}

export function clipModelCard(m: ClipMetrics, d: ClipDims, o: Pick<TrainRunOptions, 'seed' | 'lr'>): string {
  const row = (label: string, e: ClipEvaluation | undefined) =>
    e
      ? `| ${label} | ${pct(e.retrieval.top1)} (${e.retrieval.scenes} images, 1 in ${e.retrieval.candidates}; chance ${pct(e.retrieval.chance)}) | ${pct(e.identity.sameCloser)} (${e.identity.triplets}) | ${e.identity.meanSame.toFixed(3)} | ${e.identity.meanDifferent.toFixed(3)} |`
      : `| ${label} | - | - | - | - |`;
  return `# Toy-world CLIP

A contrastive image/text model of the toy world (issue 13), so CLIP-T (image-prompt similarity) and CLIP-I
(image-image similarity) mean something on the toy-world bundle. The folder is in the layout the product's
\`--clip\` option loads (packages/dynasyn/src/output/clip.ts): \`text_model.onnx\`, \`vision_model.onnx\`,
\`tokenizer/\` (CLIP byte-level BPE), \`preprocessor_config.json\` (64 px, mean = std = 0.5), plus \`clip.json\`.

## Architecture (${m.parameters.toLocaleString('en-US')} parameters, embeddings of ${d.embed})
- vision_model.onnx: pixel_values [B,3,64,64] -> strided CNN ${d.vision.join('/')} channels (Conv, GroupNorm, SiLU),
  mean over the 8x8 grid, MLP -> image_embeds [B,${d.embed}].
- text_model.onnx: input_ids, attention_mask [B,${d.context}] (int64) -> token (${d.vocab} rows) + position embeddings,
  two width-3 token convolutions (${d.textWidth} channels, residual), mean over the unmasked tokens, MLP -> text_embeds [B,${d.embed}].
- Tokenizer: the backbone's BPE learner (\`learnCaptionTokenizer\`) on 8,000 captions of the seed's training scenes.

## How it was trained
packages/ort-training (derived backward graph, AdamW, global-norm clip 1, weight decay 0.01, warmup then cosine
to a tenth), peak lr ${o.lr}, ${m.steps} steps of batch ${m.batch}, seed ${o.seed}, ${m.threads} thread(s): ${m.trainMinutes.toFixed(1)} minutes of
steps on the shared 2-core machine (under other jobs' load). Command: \`npm run toyworld:judge -- --only clip\`
(the defaults; this run used \`--threads ${m.threads}\`). Each step renders ${m.batch} fresh
scenes (never a held-out identity), each with its complete caption or a random partial one. Loss: CLIP's
symmetric InfoNCE with a learned temperature (logit scale ${m.logitScale.toFixed(1)} at the end); a caption repeated
in a batch counts as a match for each of its images.

## Measured on fresh renders
Retrieval: an image ranks its own complete caption first among ${m.ordinary?.retrieval.candidates ?? 16} (its own and 15 of other scenes).
Identity: an anchor render of an identity vs another render of it (other context, action, layout, style) and a
render of a different identity in that same other scene; "same closer" is how often CLIP-I prefers the same identity.

| scenes | retrieval top-1 | same identity closer | mean CLIP-I same | mean CLIP-I different |
| --- | --- | --- | --- | --- |
${row('ordinary identities', m.ordinary)}
${row('held-out identities', m.heldOut)}

## Limits
64x64 renders of this world and its caption vocabulary only; it knows nothing of other images or words.
`;
}
