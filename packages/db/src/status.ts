import type { PersonalizationStatus } from './generated/enums.js';

/** Running states in the order a job passes them; a job may skip ahead (e.g. augmentation reused) but never go back. */
export const RUNNING_ORDER = ['queued', 'augmenting', 'training', 'sampling'] as const satisfies readonly PersonalizationStatus[];
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const satisfies readonly PersonalizationStatus[];

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
