/**
 * Where generated weights go while a graph is built, so that no model's weights are ever all in memory:
 * each parameter is written to a file as soon as it is drawn, and the graph keeps a reference
 * (an ExternalRef) to its bytes. The UNet's file is its `model.onnx_data`, as optimum writes it for the
 * 3.4 GB SD UNet; the other models' file is a spool that onnx-writer.ts copies inline into model.onnx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType, initializerFromHost, numel, tensorBytes, type ExternalRef, type HostTensor, type Initializer } from '@dynasyn/ort-training';

/** Tensors below this many bytes stay inline, as onnx.save_model's default size_threshold leaves them. */
export const EXTERNAL_MIN_BYTES = 1024;

/** An append-only file of tensor bytes. */
export class WeightFile {
  readonly path: string;
  private fd: number | undefined;
  private offset = 0;

  /** `alignment`: each tensor starts at a multiple of it (4096 lets onnxruntime map pages, as saveModel does). */
  constructor(
    file: string,
    private readonly alignment = 1,
  ) {
    this.path = path.resolve(file);
    this.fd = fs.openSync(this.path, 'w');
  }

  append(bytes: Uint8Array): ExternalRef {
    if (this.fd === undefined) throw new Error(`weight file ${this.path} is closed`);
    const pad = (this.alignment - (this.offset % this.alignment)) % this.alignment;
    if (pad) writeAll(this.fd, new Uint8Array(pad));
    this.offset += pad;
    writeAll(this.fd, bytes);
    const ref = { path: this.path, offset: this.offset, length: bytes.byteLength };
    this.offset += bytes.byteLength;
    return ref;
  }

  /** Bytes written so far, padding included. */
  get size(): number {
    return this.offset;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength;) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
}

/**
 * A ModuleBuilder `store` that appends tensors of at least EXTERNAL_MIN_BYTES to `file` and keeps smaller
 * ones inline; `onFloats(n)` counts the float parameters stored (progress).
 */
export function spillTo(file: WeightFile, onFloats?: (n: number) => void): (name: string, t: HostTensor) => Initializer {
  return (name, t) => {
    if (t.dtype === DataType.FLOAT || t.dtype === DataType.FLOAT16) onFloats?.(numel(t.dims));
    const bytes = tensorBytes(t);
    if (bytes.byteLength < EXTERNAL_MIN_BYTES) return initializerFromHost(name, t);
    return { name, dtype: t.dtype, dims: [...t.dims], data: file.append(bytes) };
  };
}
