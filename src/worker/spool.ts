/**
 * Collects a stream of zip chunks into a few large ArrayBuffers this worker owns, so they can be
 * transferred to the page without copying (fflate's chunks may be views into shared buffers,
 * which cannot be transferred one by one).
 */
const BLOCK = 16 * 1024 * 1024;

export class Spool {
  private blocks: ArrayBuffer[] = [];
  private cur = new Uint8Array(BLOCK);
  private used = 0;
  bytes = 0;

  push(chunk: Uint8Array): void {
    let o = 0;
    while (o < chunk.length) {
      if (this.used === this.cur.length) {
        this.blocks.push(this.cur.buffer);
        this.cur = new Uint8Array(BLOCK);
        this.used = 0;
      }
      const n = Math.min(chunk.length - o, this.cur.length - this.used);
      this.cur.set(chunk.subarray(o, o + n), this.used);
      this.used += n;
      o += n;
    }
    this.bytes += chunk.length;
  }

  /** The archive; the spool is empty afterwards. */
  take(): ArrayBuffer[] {
    const out = [...this.blocks, this.cur.buffer.slice(0, this.used)];
    this.blocks = [];
    this.cur = new Uint8Array(0);
    this.used = 0;
    return out;
  }

  clear(): void {
    this.blocks = [];
    this.cur = new Uint8Array(BLOCK);
    this.used = 0;
    this.bytes = 0;
  }
}
