/** Public surface of output/: artifacts of a run, the report, CLIP evaluation. */
export * from './artifacts.js';
export { renderReport, buildReportHtml, type RenderReportOptions } from './report.js';
export { ClipModel, cosine, type ClipModelOptions } from './clip.js';
export { CLIP_IMAGE_DEFAULTS, clipPreprocess, parseClipImageConfig, resizeBicubicPil, type ClipImageConfig } from './clip-preprocess.js';
export {
  evaluateOutputDir,
  evaluateSamples,
  referenceCrops,
  subjectsInPrompt,
  type Evaluation,
  type EvaluationInput,
  type EvaluationJudge,
} from './evaluate.js';
