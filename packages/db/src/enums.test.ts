/**
 * Prisma needs its own copy of each value list (prisma/schema.prisma's enums, generated into src/generated);
 * @dynasyn/domain holds the one the code uses. They must not drift: a status added to one only would be
 * refused by Postgres or unknown to the API.
 */
import { ARTIFACT_KINDS, PERSONALIZATION_STATUSES, SAMPLE_STATUSES, WEBHOOK_DELIVERY_STATUSES } from '@dynasyn/domain';
import { readFileSync } from 'node:fs';
import { ArtifactKind, PersonalizationStatus, SampleStatus, WebhookDeliveryStatus } from './generated/enums.js';

/** `enum Name { a b c }` blocks of the schema, in declaration order. */
function schemaEnums(): Record<string, string[]> {
  const schema = readFileSync(new URL('../../../prisma/schema.prisma', import.meta.url), 'utf8');
  const enums: Record<string, string[]> = {};
  for (const m of schema.matchAll(/^enum (\w+) \{([^}]*)\}/gm)) {
    enums[m[1]!] = m[2]!
      .split('\n')
      .map((l) => l.replace(/\/\/.*$/, '').trim())
      .filter((l) => l && !l.startsWith('@@'));
  }
  return enums;
}

const pairs = {
  PersonalizationStatus: [PERSONALIZATION_STATUSES, PersonalizationStatus],
  ArtifactKind: [ARTIFACT_KINDS, ArtifactKind],
  SampleStatus: [SAMPLE_STATUSES, SampleStatus],
  WebhookDeliveryStatus: [WEBHOOK_DELIVERY_STATUSES, WebhookDeliveryStatus],
} as const;

test.each(Object.entries(pairs))('Prisma enum %s has exactly the domain values, in the same order', (name, [domain, generated]) => {
  expect(schemaEnums()[name]).toEqual([...domain]);
  expect(Object.values(generated)).toEqual([...domain]); // the generated client is not stale either
});

test('every enum of the schema is checked here', () => {
  expect(Object.keys(schemaEnums()).sort()).toEqual(Object.keys(pairs).sort());
});
