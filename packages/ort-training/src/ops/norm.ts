/** Normalizations: LayerNormalization, InstanceNormalization, GroupNormalization. */
import type { OpTable } from './types.js';

export const normOps: OpTable = {};
