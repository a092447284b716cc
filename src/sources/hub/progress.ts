/** Download progress of a Hub source, for the progress bar and the CLI. */
import { EtaEstimator, RateWindow, Throttle } from '../../core/progress';

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

/** Counters plus a sliding-window rate and a smoothed ETA (src/core/progress.ts); emits at most every `intervalMs`. */
export class ProgressTracker {
  bytes = 0;
  totalBytes = 0;
  requests = 0;
  retries = 0;
  restarts = 0;
  active = 0;
  private file?: string;
  private readonly rate: RateWindow;
  private readonly eta = new EtaEstimator({ minElapsedMs: 0, minFraction: 0 });
  private readonly throttle: Throttle;

  constructor(
    private readonly onProgress?: (p: HubProgress) => void,
    intervalMs = 200,
    windowMs = 3000,
    private readonly now: () => number = () => (globalThis.performance ?? Date).now(),
  ) {
    this.rate = new RateWindow(windowMs);
    this.throttle = new Throttle(intervalMs);
  }

  addBytes(n: number, file: string): void {
    this.bytes += n;
    this.file = file;
    this.maybeEmit();
  }

  snapshot(): HubProgress {
    const t = this.now();
    this.rate.add(t, this.bytes);
    const mbPerSec = this.rate.rate() / 1e6;
    const total = this.totalBytes > 0 ? this.totalBytes : undefined;
    const eta = total !== undefined && mbPerSec > 0 ? this.eta.update(t, Math.min(this.bytes, total), total).etaSeconds ?? undefined : undefined;
    return {
      bytes: this.bytes,
      totalBytes: total,
      mbPerSec,
      etaSeconds: eta,
      requests: this.requests,
      retries: this.retries,
      restarts: this.restarts,
      active: this.active,
      file: this.file,
    };
  }

  maybeEmit(force = false): void {
    if (!this.onProgress) return;
    if (!this.throttle.ready(this.now(), undefined, force)) return;
    this.onProgress(this.snapshot());
  }
}
