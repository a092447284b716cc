import type { BundleSink } from '../ports';
import { throwIfAborted } from '../errors';
import type { PlanItem } from '../qwen2/plan';
import { encodeF16, encodeF32 } from '../safetensors/dtype';
import { SafetensorsStreamWriter, type ShardLayout } from '../safetensors/writer';
import type { ProcessedMatrix } from './process-tensor';

/** A sink that counts what goes through it and lists the files it closed. */
export class CountingSink implements BundleSink {
  bytesWritten = 0;
  readonly written: { path: string; size: number }[] = [];
  readonly label: string;

  constructor(private readonly sink: BundleSink, private readonly signal?: AbortSignal) {
    this.label = sink.label;
  }

  async createFile(path: string, size?: number) {
    const w = await this.sink.createFile(path, size);
    let n = 0;
    return {
      write: async (chunk: Uint8Array) => {
        throwIfAborted(this.signal);
        await w.write(chunk);
        n += chunk.length;
        this.bytesWritten += chunk.length;
      },
      close: async () => {
        await w.close();
        this.written.push({ path, size: n });
      },
    };
  }

  async writeFile(path: string, bytes: Uint8Array): Promise<void> {
    const w = await this.createFile(path, bytes.length);
    await w.write(bytes);
    await w.close();
  }

  finalize(): Promise<void> {
    return this.sink.finalize();
  }

  abort(reason?: unknown): Promise<void> {
    return this.sink.abort(reason);
  }
}

/**
 * The safetensors files of the bundle, written behind the computation: a tensor's outputs are
 * written while the next one is computed; at most one tensor's output waits in memory (the
 * writer itself takes one call at a time).
 */
export class TensorOutputs {
  private readonly writer: SafetensorsStreamWriter;
  private writing: Promise<void> = Promise.resolve();
  readonly encode: (v: Float32Array) => Uint8Array;

  constructor(sink: BundleSink, layout: ShardLayout, outDtype: 'F16' | 'F32') {
    this.writer = new SafetensorsStreamWriter(sink, layout);
    this.encode = outDtype === 'F16' ? encodeF16 : encodeF32;
  }

  async queue(list: [string, Uint8Array][]): Promise<void> {
    await this.writing;
    this.writing = (async () => {
      for (const [name, bytes] of list) await this.writer.writeTensor(name, bytes);
    })();
    this.writing.catch(() => undefined); // surfaced by the next await of `writing`
  }

  /**
   * One tensor written in pieces, behind the computation like `queue`: each chunk waits for the
   * one before it, so at most one chunk waits in memory.
   */
  stream(name: string): { write(chunk: Uint8Array): Promise<void>; end(): Promise<void> } {
    let begun = false;
    const then = async (f: () => Promise<void>): Promise<void> => {
      await this.writing;
      this.writing = (async () => {
        if (!begun) { begun = true; await this.writer.beginTensor(name); }
        await f();
      })();
      this.writing.catch(() => undefined); // surfaced by the next await of `writing`
    };
    return {
      write: (chunk) => then(() => this.writer.writeChunk(chunk)),
      end: () => then(() => this.writer.endTensor()),
    };
  }

  async finish(): Promise<void> {
    await this.writing;
    await this.writer.finish();
  }
}

/**
 * A matrix item's output tensors in file order (FORMAT.md): the weight; the bias (the real one,
 * rotated, for q/k/v; zeros for the other quantized projections — ANEMLL needs all 7); and for a
 * quantized projection its input/output scales and codebook.
 */
export function matrixOutputs(item: PlanItem, result: ProcessedMatrix, bias: Float32Array | null, encode: (v: Float32Array) => Uint8Array): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [[item.name, result.weightBytes]];
  const quantizedProjection = item.quant !== null && item.kind === 'projection';
  if (item.biasSource || quantizedProjection) {
    out.push([item.outputs[1].name, encode(bias ?? new Float32Array(item.rows))]);
  }
  if (quantizedProjection) {
    const s = result.scales!;
    out.push(
      [item.outputs[2].name, encode(s.inputScales ?? new Float32Array(item.cols).fill(s.inputScale))],
      [item.outputs[3].name, encode(s.outputScales)],
      [item.outputs[4].name, encode(result.codebook!)],
    );
  }
  return out;
}
