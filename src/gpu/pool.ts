/**
 * Storage buffers pooled by size (rounded up to 256 bytes), up to a byte limit of idle buffers.
 * A recycled buffer may be handed out to work encoded later: queue order keeps earlier users'
 * commands ahead of it.
 */
import { USAGE_STORAGE, type GpuRuntime } from './runtime';

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private idleBytes = 0;

  constructor(private readonly rt: GpuRuntime, private readonly limitBytes: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    const list = this.free.get(size);
    if (list && list.length > 0) {
      this.idleBytes -= size;
      return list.pop()!;
    }
    return this.rt.createBuffer(`pool ${size}`, size, USAGE_STORAGE);
  }

  recycle(buffer: GPUBuffer): void {
    const size = buffer.size;
    if (this.idleBytes + size > this.limitBytes || this.rt.lost) {
      buffer.destroy();
      return;
    }
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
    this.idleBytes += size;
  }

  destroy(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.idleBytes = 0;
  }
}
