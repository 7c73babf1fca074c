/** The op table: every op this package can infer, fold or differentiate, by domain and type. */
import { OrtTrainingError } from '../errors.js';
import type { OpDef, OpTable } from './types.js';
import { elementwiseOps } from './elementwise.js';
import { reduceOps } from './reduce.js';
import { normOps } from './norm.js';
import { linalgOps } from './linalg.js';
import { shapeOps } from './shape.js';

const tables: OpTable[] = [elementwiseOps, reduceOps, normOps, linalgOps, shapeOps];
const defaultDomain = new Map<string, OpDef>();
for (const t of tables)
  for (const [k, v] of Object.entries(t)) {
    if (defaultDomain.has(k)) throw new Error(`op ${k} is defined twice`);
    defaultDomain.set(k, v);
  }

const isDefaultDomain = (d: string) => d === '' || d === 'ai.onnx';

export function findOp(domain: string, opType: string): OpDef | undefined {
  return isDefaultDomain(domain) ? defaultDomain.get(opType) : undefined;
}

export function lookupOp(domain: string, opType: string, nodeName?: string): OpDef {
  const def = findOp(domain, opType);
  if (!def) {
    const where = nodeName ? ` (node ${nodeName})` : '';
    const d = isDefaultDomain(domain) ? '' : `${domain}::`;
    throw new OrtTrainingError('UNSUPPORTED_OP', `operator ${d}${opType}${where} is not supported by ort-training`);
  }
  return def;
}

export const supportedOps = (): string[] => [...defaultDomain.keys()].sort();
