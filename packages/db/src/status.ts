// The statuses and their transitions are the service's vocabulary, defined once in @dynasyn/domain; the
// repositories match conditional UPDATEs on them (statusesLeadingTo). enums.test.ts keeps Prisma's enum equal.
export { canTransition, isTerminal, statusesLeadingTo, RUNNING_ORDER, TERMINAL_STATUSES } from '@dynasyn/domain';
