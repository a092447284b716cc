import type { Backend, Mat, ModelSource } from '../ports';
import { isDerivedHead, type PlanItem, type QuantPlan } from '../qwen2/plan';
import { FINAL_NORM } from '../qwen2/tensors';
import type { SafetensorsModel } from '../safetensors/model';
import { readFiniteTensorBytes, readFiniteTensorRowBytes } from '../safetensors/read-tensor';
import type { Dtype } from '../safetensors/types';

export interface SourceBytes {
  bytes: Uint8Array;
  dtype: Dtype;
}

/**
 * Reads the plan's source tensors, one step ahead: the next tensor's bytes arrive (and, on a GPU,
 * its upload and decode are queued) while the current one is computed.
 */
export class TensorReader {
  /** Source tensor bytes read so far. */
  bytesRead = 0;
  private readonly reading = new Map<string, Promise<SourceBytes>>();
  private uploadAhead: { name: string; mat: Promise<Mat> } | null = null;

  constructor(
    private readonly model: SafetensorsModel,
    private readonly backend: Backend,
    private readonly signal?: AbortSignal,
    /** Items processed in tiles: never read ahead whole. */
    private readonly tiled: (item: PlanItem) => boolean = () => false,
  ) {}

  /** Rows [firstRow, firstRow + count) of a source tensor's bytes (a tile); `counted` adds them to bytesRead. */
  async readRows(name: string, firstRow: number, count: number, counted: boolean): Promise<Uint8Array> {
    const t = this.model.tensors.get(name)!;
    const bytes = await readFiniteTensorRowBytes(this.model.files.get(t.file)!.source, t.info, firstRow, count, this.signal);
    if (counted) this.bytesRead += bytes.length;
    return bytes;
  }

  /** Bytes the plan reads from the source in all. */
  static bytesToRead(model: SafetensorsModel, plan: QuantPlan): number {
    let n = 0;
    for (const it of plan.items) {
      if (isDerivedHead(it)) continue;
      for (const name of it.biasSource ? [it.source, it.biasSource] : [it.source]) {
        const t = model.tensors.get(name)!;
        n += t.info.end - t.info.begin;
      }
    }
    return n;
  }

  /**
   * Tell a streaming source what will be read, per file, sorted by offset so adjacent tensors
   * coalesce into large requests (the plan already reads each shard almost in order). The final
   * norm of a tied, rotated model is read first but sits at the end of the last shard: it stays a
   * small direct read instead of pinning that shard's last block for the run.
   */
  async announce(source: ModelSource, plan: QuantPlan): Promise<void> {
    if (!source.prefetch) return;
    const ranges = new Map<string, { offset: number; length: number }[]>();
    const want = (name: string): void => {
      const t = this.model.tensors.get(name)!;
      if (!ranges.has(t.file)) ranges.set(t.file, []);
      ranges.get(t.file)!.push({ offset: t.info.begin, length: t.info.end - t.info.begin });
    };
    const firstGroupNorm = plan.items.findIndex((it) => it.kind !== 'norm');
    plan.items.forEach((it, i) => {
      if (isDerivedHead(it)) return;
      if (it.name === FINAL_NORM && i < firstGroupNorm) return;
      want(it.source);
      if (it.biasSource) want(it.biasSource);
    });
    for (const [file, r] of ranges) await source.prefetch(file, r.sort((a, b) => a.offset - b.offset));
  }

  private start(name: string): Promise<SourceBytes> {
    let p = this.reading.get(name);
    if (!p) {
      const t = this.model.tensors.get(name)!;
      p = readFiniteTensorBytes(this.model.files.get(t.file)!.source, t.info, this.signal).then((bytes) => {
        this.bytesRead += bytes.length;
        return { bytes, dtype: t.info.dtype };
      });
      p.catch(() => undefined); // surfaced when awaited; a cancelled read-ahead is not an unhandled rejection
      this.reading.set(name, p);
    }
    return p;
  }

  /** A source tensor's bytes (already on their way if read ahead). */
  read(name: string): Promise<SourceBytes> {
    const p = this.start(name);
    this.reading.delete(name);
    return p;
  }

  /** A matrix item's source on the backend: the upload queued ahead, or read and uploaded now. */
  async upload(item: PlanItem): Promise<Mat> {
    if (this.uploadAhead?.name === item.source) {
      const m = await this.uploadAhead.mat;
      this.uploadAhead = null;
      return m;
    }
    const { bytes, dtype } = await this.read(item.source);
    return this.backend.upload(bytes, dtype, item.rows, item.cols);
  }

  /** Start reading the item after the current one (and, on a GPU, its upload). */
  readAhead(next: PlanItem | undefined): void {
    if (!next || isDerivedHead(next)) return;
    if (this.tiled(next)) {
      if (next.biasSource) this.start(next.biasSource);
      return;
    }
    this.start(next.source);
    if (next.biasSource) this.start(next.biasSource);
    if (this.backend.name === 'webgpu' && next.kind !== 'norm') {
      // On a GPU the next tensor's upload and decode overlap this one's compute and readbacks
      // (the CPU backend computes synchronously, so it gains nothing).
      const ahead = this.read(next.source).then(({ bytes, dtype }) => this.backend.upload(bytes, dtype, next.rows, next.cols));
      ahead.catch(() => undefined); // surfaced when awaited
      this.uploadAhead = { name: next.source, mat: ahead };
    }
  }

  /** Release an upload started for a tensor the run will no longer use. */
  dispose(): void {
    this.uploadAhead?.mat.then((m) => this.backend.release(m), () => undefined);
    this.uploadAhead = null;
  }
}
