/**
 * A scene spec: plain JSON that fully determines a render (with the image size). Parsed with zod; a bad spec
 * throws ToyworldError BAD_SPEC whose message names every bad field (`subjects.1.colour: ...`).
 */
import { z } from 'zod';
import { ToyworldError } from './errors.js';
import { ACCESSORIES, ACTIONS, CLASSES, COLOURS, CONTEXTS, FACINGS, INTERACTIONS, PATTERNS, STYLES, type ColourName } from './vocab.js';

const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (issue) => `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}; got ${JSON.stringify(issue.input)}` });

export const subjectSpecSchema = z
  .object({
    class: oneOf(CLASSES),
    colour: oneOf(COLOURS as [ColourName, ...ColourName[]]),
    pattern: oneOf(PATTERNS),
    accessory: oneOf(ACCESSORIES),
    action: oneOf(ACTIONS),
    /** Which way it looks; default right. */
    facing: oneOf(FACINGS).optional(),
  })
  .strict();

export const layoutSchema = z
  .object({
    /** Horizontal centre of the group, as a fraction of the width (default 0.5). */
    x: z.number().min(0.3).max(0.7).optional(),
    /** Size multiplier of every subject (default 1). */
    scale: z.number().min(0.8).max(1.2).optional(),
    /** Mirror the arrangement: subject 0 on the right in `next to`, and so on (default false). */
    mirror: z.boolean().optional(),
  })
  .strict();

export const sceneSpecSchema = z
  .object({
    subjects: z.array(subjectSpecSchema).min(1, 'a scene has 1 or 2 subjects').max(2, 'a scene has 1 or 2 subjects'),
    /** How subject 0 relates to subject 1: required with two subjects, absent with one. */
    interaction: oneOf(INTERACTIONS).optional(),
    context: oneOf(CONTEXTS),
    style: oneOf(STYLES),
    layout: layoutSchema.optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.subjects.length === 2 && spec.interaction === undefined)
      ctx.addIssue({ code: 'custom', path: ['interaction'], message: `required with two subjects: one of ${INTERACTIONS.join(', ')}` });
    if (spec.subjects.length === 1 && spec.interaction !== undefined)
      ctx.addIssue({ code: 'custom', path: ['interaction'], message: 'only a scene with two subjects has an interaction' });
  });

export type SubjectSpec = z.infer<typeof subjectSpecSchema>;
export type SceneLayout = z.infer<typeof layoutSchema>;
export type SceneSpec = z.infer<typeof sceneSpecSchema>;

/** Validates unknown JSON as a scene spec; throws ToyworldError BAD_SPEC naming each bad field. */
export function parseSceneSpec(json: unknown): SceneSpec {
  const parsed = sceneSpecSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(spec)'}: ${issue.message}`);
  throw new ToyworldError('BAD_SPEC', `bad scene spec: ${problems.join('; ')}`);
}

/** JSON with object keys sorted at every level: one text per spec, whatever order its fields came in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
