/**
 * JSON schemas shared by the routes (responses are serialized through them: unknown fields never leak). The
 * value lists come from @dynasyn/domain, so the OpenAPI document names the same statuses, stages and kinds the
 * code uses.
 */
import { ARTIFACT_KINDS, PERSONALIZATION_STATUSES, SAMPLE_STATUSES, STAGE_NAMES } from '@dynasyn/domain';

export const errorRef = { $ref: 'Error#' } as const;
export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;

const jsonObject = { type: 'object', additionalProperties: true } as const;
const linksSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;

const share = (description: string) => ({ type: ['number', 'null'], minimum: 0, maximum: 1, description }) as const;

/**
 * Mean scores of a group of samples: CLIP's (CLIP-I: null when no sample of the group names a subject), and the
 * toy-world judge's when the sample worker has one (JUDGE_MODEL; each null when it applies to no sample of the group).
 */
const clipScores = {
  type: 'object',
  properties: {
    count: { type: 'integer' },
    clipT: { type: ['number', 'null'] },
    clipI: { type: ['number', 'null'] },
    identity: share(
      "judge only: identity acc., the share of the subjects a prompt names found with class, colour, pattern and accessory all as in the reference (the judge's reading of it, `judge.identities`)",
    ),
    attributes: share('judge only: attributes kept, the share of those four attributes found as in the reference'),
    prompt: share('judge only: prompt acc., the share of samples where every asked action, interaction, context and style is what the judge sees'),
  },
} as const;

/** What the judge read of one reference subject inside its mask. */
const subjectIdentity = {
  type: 'object',
  properties: { class: { type: 'string' }, colour: { type: 'string' }, pattern: { type: 'string' }, accessory: { type: 'string' } },
} as const;

/**
 * A personalization's metrics: training's summary (steps, loss, attention, timingsMs; README "Progress, artifacts,
 * metrics"), and `evaluation` once its samples were scored by a sample worker with a CLIP (CLIP_MODEL), with the
 * toy-world judge's figures when it has a judge too (JUDGE_MODEL).
 */
const personalizationMetrics = {
  type: 'object',
  additionalProperties: true,
  properties: {
    evaluation: {
      type: 'object',
      description:
        'CLIP-T / CLIP-I of the first samples per prompt category (plain, action, interaction) and over all, and with a toy-world judge its identity acc., attributes kept and prompt acc.; absent without a CLIP',
      properties: {
        model: { type: 'string' },
        byCategory: { type: 'object', additionalProperties: clipScores },
        overall: clipScores,
        judge: {
          type: 'object',
          description: "present only with a toy-world judge: its folder, and each reference subject's identity as the judge read it inside the subject's mask",
          properties: { model: { type: 'string' }, identities: { type: 'array', items: subjectIdentity } },
        },
      },
    },
  },
} as const;

export const createdSchema = {
  type: 'object',
  required: ['id', 'status', 'links'],
  properties: { id: { type: 'string' }, status: { type: 'string', enum: PERSONALIZATION_STATUSES }, links: linksSchema },
} as const;

export const personalizationSchema = {
  type: 'object',
  required: ['id', 'status', 'progress', 'artifacts', 'createdAt', 'updatedAt', 'links'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: PERSONALIZATION_STATUSES },
    progress: {
      type: 'array',
      items: {
        type: 'object',
        required: ['stage', 'step', 'total'],
        properties: { stage: { type: 'string', enum: STAGE_NAMES }, step: { type: 'integer' }, total: { type: 'integer' } },
      },
    },
    subjects: { type: 'array', items: { type: 'object', properties: { class: { type: 'string' }, phrase: { type: 'string' } } } },
    options: jsonObject,
    webhookUrl: { type: ['string', 'null'] },
    metrics: personalizationMetrics,
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    artifacts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ARTIFACT_KINDS },
          url: { type: 'string' },
          size: { type: 'integer' },
          sha256: { type: 'string' },
          contentType: { type: 'string' },
          createdAt: { type: 'string', format: 'date-time' },
        },
      },
    },
    cancelRequestedAt: { type: ['string', 'null'], format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    links: linksSchema,
  },
} as const;

export const sampleSchema = {
  type: 'object',
  required: ['id', 'prompt', 'seed', 'status', 'url'],
  properties: {
    id: { type: 'string' },
    personalizationId: { type: 'string' },
    prompt: { type: 'string' },
    seed: { type: 'integer' },
    steps: { type: ['integer', 'null'] },
    guidance: { type: ['number', 'null'] },
    status: { type: 'string', enum: SAMPLE_STATUSES },
    url: { type: ['string', 'null'] },
    metrics: jsonObject,
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, errorRef]));
