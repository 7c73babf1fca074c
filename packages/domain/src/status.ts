/**
 * The states of a personalization and of a sample request, and the moves between them. prisma/schema.prisma
 * repeats the value lists (Prisma needs its own enums); packages/db/src/enums.test.ts keeps the two equal.
 */
import { z } from 'zod';

/** Running states in the order a job passes them; a job may skip ahead (e.g. augmentation reused) but never go back. */
export const RUNNING_ORDER = ['queued', 'augmenting', 'training', 'sampling'] as const;
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const;
export const PERSONALIZATION_STATUSES = [...RUNNING_ORDER, ...TERMINAL_STATUSES] as const;
export type PersonalizationStatus = (typeof PERSONALIZATION_STATUSES)[number];
export const personalizationStatusSchema = z.enum(PERSONALIZATION_STATUSES);

/** A requested sample (one prompt and seed of a samples request). */
export const SAMPLE_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type SampleStatus = (typeof SAMPLE_STATUSES)[number];
export const sampleStatusSchema = z.enum(SAMPLE_STATUSES);

/** A webhook delivery: `failed` once its attempts are spent. */
export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

export function isTerminal(status: PersonalizationStatus): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** Whether `from -> to` is a legal move: forward among running states, or into any terminal state; terminal states stick. */
export function canTransition(from: PersonalizationStatus, to: PersonalizationStatus): boolean {
  if (isTerminal(from)) return false;
  if (isTerminal(to)) return true;
  return (RUNNING_ORDER as readonly string[]).indexOf(to) > (RUNNING_ORDER as readonly string[]).indexOf(from);
}

/** The states from which `to` may be entered (what a conditional UPDATE matches on). */
export function statusesLeadingTo(to: PersonalizationStatus): PersonalizationStatus[] {
  return RUNNING_ORDER.filter((from) => canTransition(from, to));
}
