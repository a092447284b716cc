/**
 * Per-kernel GPU times from timestamp queries (when the device has 'timestamp-query'): each
 * profiled kernel runs in its own compute pass whose begin/end timestamps are written into a
 * query set, resolved at submit and read back by take().
 */
import { USAGE_QUERY_RESOLVE, USAGE_READBACK, type GpuRuntime } from './runtime';

export interface KernelTiming {
  kernel: string;
  ms: number;
}

const CAPACITY = 256;
const MAP_READ = 0x01;

export class TimestampProfiler {
  private querySet: GPUQuerySet | null = null;
  private labels: string[] = [];
  private pending: { labels: string[]; buffer: GPUBuffer }[] = [];
  private timings: KernelTiming[] = [];

  constructor(private readonly rt: GpuRuntime) {}

  get enabled(): boolean {
    return this.rt.hasTimestamps;
  }

  /** A compute pass, timed when there is room in the query set. */
  beginPass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    if (!this.enabled) return encoder.beginComputePass({ label });
    this.querySet ??= this.rt.device.createQuerySet({ label: 'profiler', type: 'timestamp', count: CAPACITY * 2 });
    if (this.labels.length >= CAPACITY) return encoder.beginComputePass({ label });
    const i = this.labels.length;
    this.labels.push(label);
    return encoder.beginComputePass({
      label,
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
  }

  /** Before finishing `encoder`: resolve this submit's queries into a buffer read later. Returns a buffer to destroy after submit. */
  resolve(encoder: GPUCommandEncoder): GPUBuffer | null {
    if (!this.querySet || this.labels.length === 0) return null;
    const n = this.labels.length;
    const resolve = this.rt.createBuffer('profiler resolve', n * 16, USAGE_QUERY_RESOLVE);
    const read = this.rt.createBuffer('profiler read', n * 16, USAGE_READBACK);
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, n * 16);
    this.pending.push({ labels: this.labels, buffer: read });
    this.labels = [];
    return resolve;
  }

  /** Kernel times recorded since the last call. */
  async take(): Promise<KernelTiming[]> {
    const pending = this.pending;
    this.pending = [];
    for (const { labels, buffer } of pending) {
      await buffer.mapAsync(MAP_READ);
      const t = new BigInt64Array(buffer.getMappedRange().slice(0));
      buffer.destroy();
      labels.forEach((kernel, i) => this.timings.push({ kernel, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
    }
    const out = this.timings;
    this.timings = [];
    return out;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.querySet = null;
  }
}
