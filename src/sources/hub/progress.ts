/** Download progress of a Hub source, for the progress bar and the CLI. */
export interface HubProgress {
  /** Payload bytes received so far (all files, including retried parts). */
  bytes: number;
  /** Bytes the pipeline said it will read (sum of prefetch plans + expectBytes), when known. */
  totalBytes?: number;
  /** Recent throughput (last few seconds), in MB/s (10^6 bytes). */
  mbPerSec: number;
  /** Seconds left at the recent rate, when totalBytes is known and the rate is non-zero. */
  etaSeconds?: number;
  requests: number;
  retries: number;
  /** Files restarted from scratch because their ETag changed. */
  restarts: number;
  /** Range requests currently open. */
  active: number;
  /** The file the last bytes belonged to. */
  file?: string;
}

/** Counters plus a sliding-window rate; emits at most every `intervalMs`. */
export class ProgressTracker {
  bytes = 0;
  totalBytes = 0;
  requests = 0;
  retries = 0;
  restarts = 0;
  active = 0;
  private file?: string;
  private samples: { t: number; bytes: number }[] = [];
  private lastEmit = 0;

  constructor(
    private readonly onProgress?: (p: HubProgress) => void,
    private readonly intervalMs = 200,
    private readonly windowMs = 3000,
    private readonly now: () => number = () => (globalThis.performance ?? Date).now(),
  ) {}

  addBytes(n: number, file: string): void {
    this.bytes += n;
    this.file = file;
    this.maybeEmit();
  }

  snapshot(): HubProgress {
    const t = this.now();
    this.samples.push({ t, bytes: this.bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > this.windowMs) this.samples.shift();
    const first = this.samples[0];
    const dt = (t - first.t) / 1000;
    const mbPerSec = dt > 0 ? (this.bytes - first.bytes) / dt / 1e6 : 0;
    const total = this.totalBytes > 0 ? this.totalBytes : undefined;
    const etaSeconds = total !== undefined && mbPerSec > 0 ? Math.max(0, total - this.bytes) / (mbPerSec * 1e6) : undefined;
    return {
      bytes: this.bytes,
      totalBytes: total,
      mbPerSec,
      etaSeconds,
      requests: this.requests,
      retries: this.retries,
      restarts: this.restarts,
      active: this.active,
      file: this.file,
    };
  }

  maybeEmit(force = false): void {
    if (!this.onProgress) return;
    const t = this.now();
    if (!force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    this.onProgress(this.snapshot());
  }
}
