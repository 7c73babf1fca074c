import type { ModelBundle, PrismaClient } from '../generated/client.js';

export interface BundleInput {
  name: string;
  /** A bundle directory or storage URL. */
  uri: string;
  /** Identifies the weights; the same fingerprint is the same bundle. */
  fingerprint: string;
  randomWeights: boolean;
}

export interface BundlesRepository {
  /** Registers a bundle once per fingerprint (later calls refresh name and uri); safe to call at every start. */
  ensure(input: BundleInput): Promise<ModelBundle>;
  get(id: string): Promise<ModelBundle | null>;
}

export function createBundlesRepository(prisma: PrismaClient): BundlesRepository {
  return {
    ensure: (input) =>
      prisma.modelBundle.upsert({
        where: { fingerprint: input.fingerprint },
        create: input,
        update: { name: input.name, uri: input.uri, randomWeights: input.randomWeights },
      }),
    get: (id) => prisma.modelBundle.findUnique({ where: { id } }),
  };
}
