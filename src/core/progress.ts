/**
 * Progress arithmetic shared by the CLI, the app (worker and page) and the Hub source: a rate
 * over a sliding time window, a smoothed time-left estimate, and a throttle for progress
 * messages. Pure: every call takes the time (ms) from the caller, so tests drive a fake clock.
 */
import type { ProgressEvent } from './pipeline/events';

/** Units per second over the last `windowMs` of samples (bytes/s, windows/s, fraction/s …). */
export class RateWindow {
  private samples: { t: number; v: number }[] = [];

  constructor(private readonly windowMs = 3000) {}

  /** Record the running total `value` at time `nowMs`. */
  add(nowMs: number, value: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && nowMs <= last.t) {
      last.v = value; // same instant (or a clock step back): keep the newest total
      return;
    }
    this.samples.push({ t: nowMs, v: value });
    // Keep one sample older than the window so the rate spans the whole window.
    while (this.samples.length > 2 && nowMs - this.samples[1].t >= this.windowMs) this.samples.shift();
  }

  /** Units per second between the oldest kept sample and the newest; 0 before two samples. */
  rate(): number {
    const n = this.samples.length;
    if (n < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[n - 1];
    const dt = (b.t - a.t) / 1000;
    return dt > 0 ? Math.max(0, (b.v - a.v) / dt) : 0;
  }

  reset(): void {
    this.samples = [];
  }
}

export interface ProgressEstimate {
  /** done / total in [0, 1] (0 when total is unknown). */
  fraction: number;
  elapsedSeconds: number;
  /** Units per second over the recent window. */
  rate: number;
  /** Units per second since the start. */
  averageRate: number;
  /** Smoothed seconds left; null until there is enough to go on (or when finished). */
  etaSeconds: number | null;
}

export interface EtaOptions {
  /** Sliding window of the recent rate. */
  windowMs?: number;
  /** Time constant of the exponential smoothing of the time left. */
  smoothingMs?: number;
  /** No estimate before this much time … */
  minElapsedMs?: number;
  /** … or before this much of the work is done. */
  minFraction?: number;
}

/**
 * Time left for work measured as `done` of `total` units. The raw estimate divides what is
 * left by a blend of the recent and the average rate (recent rates alone swing with every large
 * tensor; the average alone reacts too slowly to a change of phase); the shown estimate counts
 * down between updates and moves toward the raw one with time constant `smoothingMs`, so it
 * neither jumps nor freezes.
 */
export class EtaEstimator {
  private readonly window: RateWindow;
  private readonly smoothingMs: number;
  private readonly minElapsedMs: number;
  private readonly minFraction: number;
  private startMs: number | null = null;
  private lastMs = 0;
  private eta: number | null = null;

  constructor(opts: EtaOptions = {}) {
    this.window = new RateWindow(opts.windowMs ?? 5000);
    this.smoothingMs = opts.smoothingMs ?? 4000;
    this.minElapsedMs = opts.minElapsedMs ?? 1000;
    this.minFraction = opts.minFraction ?? 0.02;
  }

  /**
   * `nowMs` on any clock; the first call marks the start unless `elapsedMs` (time since the
   * work began, as the pipeline reports it) is given.
   */
  update(nowMs: number, done: number, total: number, elapsedMs?: number): ProgressEstimate {
    if (this.startMs === null) this.startMs = elapsedMs !== undefined ? nowMs - elapsedMs : nowMs;
    const elapsed = Math.max(0, elapsedMs ?? nowMs - this.startMs);
    this.window.add(nowMs, done);
    const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
    const averageRate = elapsed > 0 ? done / (elapsed / 1000) : 0;
    const rate = this.window.rate();
    const out = { fraction, elapsedSeconds: elapsed / 1000, rate, averageRate, etaSeconds: null as number | null };
    if (total <= 0 || done >= total) {
      this.eta = null;
      this.lastMs = nowMs;
      return out;
    }
    if (elapsed < this.minElapsedMs || fraction < this.minFraction) {
      this.lastMs = nowMs;
      return out;
    }
    // Lean on the average early, on the recent rate once the window is filled with real work.
    const blended = rate > 0 ? 0.5 * rate + 0.5 * averageRate : averageRate;
    if (!(blended > 0)) {
      this.lastMs = nowMs;
      out.etaSeconds = this.eta;
      return out;
    }
    const raw = (total - done) / blended;
    if (this.eta === null) this.eta = raw;
    else {
      const dt = Math.max(0, nowMs - this.lastMs);
      const counted = Math.max(0, this.eta - dt / 1000);
      const a = 1 - Math.exp(-dt / this.smoothingMs);
      this.eta = counted + a * (raw - counted);
    }
    this.lastMs = nowMs;
    out.etaSeconds = this.eta;
    return out;
  }

  reset(): void {
    this.window.reset();
    this.startMs = null;
    this.eta = null;
  }
}

/**
 * Lets a progress message through at most every `intervalMs`, except that a change of `key`
 * (a phase, a stage) or `force` always passes.
 */
export class Throttle {
  private last = -Infinity;
  private lastKey: string | undefined;

  constructor(private readonly intervalMs: number) {}

  ready(nowMs: number, key?: string, force = false): boolean {
    if (!force && key === this.lastKey && nowMs - this.last < this.intervalMs) return false;
    this.last = nowMs;
    this.lastKey = key;
    return true;
  }
}

/** "1.23 MB/s", with enough digits that a slow rate does not read as 0.0. */
export function formatRate(bytesPerSecond: number): string {
  const mb = bytesPerSecond / 1e6;
  if (!(mb > 0)) return '0 MB/s';
  if (mb >= 100) return `${mb.toFixed(0)} MB/s`;
  if (mb >= 1) return `${mb.toFixed(1)} MB/s`;
  if (mb >= 0.01) return `${mb.toFixed(2)} MB/s`;
  return `${(bytesPerSecond / 1e3).toFixed(1)} kB/s`;
}

/**
 * How far a pipeline run is, in [0, 1]: half by tensors (covers norms and the tied head, which
 * read little), half by bytes read (tracks the work of big tensors).
 */
export function runFraction(e: ProgressEvent): number {
  if (e.phase === 'done') return 1;
  if (e.phase === 'prepare') return 0;
  const byTensor = e.tensorCount > 0 ? e.tensorIndex / e.tensorCount : 0;
  const byBytes = e.bytesToRead > 0 ? e.bytesRead / e.bytesToRead : 0;
  const f = Math.min(0.995, 0.5 * byTensor + 0.5 * byBytes);
  return e.phase === 'finalize' ? Math.max(f, 0.98) : f;
}

export interface RunEstimate {
  fraction: number;
  /** Source bytes read per second over the last few seconds, and since the start. */
  readBytesPerSec: number;
  averageReadBytesPerSec: number;
  etaSeconds: number | null;
}

/** Fraction, read rate and smoothed ETA of a pipeline run, fed every progress event (before throttling). */
export class RunMeter {
  private readonly eta = new EtaEstimator();
  private readonly read = new RateWindow(3000);

  /** `nowMs` on the caller's clock; the event's elapsedMs is the run's own. */
  update(e: ProgressEvent, nowMs: number = e.elapsedMs): RunEstimate {
    const fraction = runFraction(e);
    const est = this.eta.update(nowMs, fraction, 1, e.elapsedMs);
    this.read.add(nowMs, e.bytesRead);
    const secs = e.elapsedMs / 1000;
    return {
      fraction,
      readBytesPerSec: this.read.rate(),
      averageReadBytesPerSec: secs > 0 ? e.bytesRead / secs : 0,
      etaSeconds: e.phase === 'done' ? null : est.etaSeconds,
    };
  }
}
