import { Prisma } from '../generated/client.js';

/** True for a unique-constraint violation, which the repositories turn into "someone else won the race". */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}
