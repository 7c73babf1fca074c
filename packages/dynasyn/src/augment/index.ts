/** Prompt-and-image augmentation and Guided SDE Augmentation (METHOD.md "Prompt-and-image augmentation"). */
export { AugmentationError, isAugmentationError, type AugmentationErrorCode } from './errors.js';
export { placeholderToken, renderPrompt, renderings, slotsOf, type AugmentationPrompt, type PromptCategory, type PromptProvider } from './prompt.js';
export {
  AGENT_FAMILIES,
  CLASS_FAMILIES,
  classFamily,
  FAMILY_ACTIONS,
  FAMILY_INTERACTIONS,
  interactionTemplates,
  PLAIN_TEMPLATES,
  plainTemplates,
  SETTINGS,
  SPATIAL_INTERACTIONS,
  type ClassFamily,
} from './templates.js';
export { categoryQuotas, selectTemplatePrompts, TemplatePromptProvider, type TemplateProviderOptions } from './template-provider.js';
export { OpenAiChatClient, type ChatClientOptions, type ChatContentPart, type ChatMessage } from './openai-client.js';
export { generationRequest, KEEP_NATURAL_REQUEST, NOUN_PHRASE_QUESTION, OpenAiPromptProvider } from './openai-provider.js';
export { headNoun, parseLineList, sentenceToPrompt } from './parse.js';
export { renderDrafts, type Draft, type DraftOptions, type DraftPrompt } from './drafts.js';
export {
  attentionMasks,
  createSamSegmenter,
  otsuThreshold,
  slotTokenPositions,
  tokenMap,
  type AttentionMaskOptions,
  type SubjectSegmenter,
} from './pseudo-masks.js';
export { inpaintHoles, pasteSubjects, type Composition, type InpaintHolesOptions, type PasteArgs } from './compose.js';
export { gsaSchedule, guidedSdeAugmentation, type GsaOptions, type GsaResult } from './gsa.js';
export {
  applyGsa,
  augment,
  composeAugmentations,
  createPromptProvider,
  type AugmentedSample,
  type AugmentRunOptions,
  type ComposedSample,
  type GsaRunOptions,
} from './augment.js';
export { AUGMENTED_MANIFEST, loadAugmented, loadComposed, saveAugmented, type AugmentedSetStage, type LoadedAugmentedExample } from './storage.js';
