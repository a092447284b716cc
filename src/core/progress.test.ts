import { describe, expect, it } from 'vitest';
import { EtaEstimator, formatRate, RateWindow, Throttle } from './progress';

describe('RateWindow', () => {
  it('measures the rate over the recent window, not since the start', () => {
    const w = new RateWindow(2000);
    // 10 units/s for 10 s, then 100 units/s.
    let v = 0;
    for (let t = 0; t <= 10_000; t += 500) { w.add(t, v); v += 5; }
    expect(w.rate()).toBeCloseTo(10, 6);
    for (let t = 10_500; t <= 14_000; t += 500) { v += 50; w.add(t, v); }
    expect(w.rate()).toBeCloseTo(100, 6);
  });

  it('is 0 with fewer than two samples and never negative', () => {
    const w = new RateWindow();
    expect(w.rate()).toBe(0);
    w.add(0, 10);
    expect(w.rate()).toBe(0);
    w.add(1000, 5); // a restart lowered the total
    expect(w.rate()).toBe(0);
  });

  it('keeps the newest total for samples at the same instant', () => {
    const w = new RateWindow();
    w.add(0, 0);
    w.add(1000, 10);
    w.add(1000, 20);
    expect(w.rate()).toBeCloseTo(20, 6);
  });
});

describe('EtaEstimator', () => {
  it('gives the exact time left at a constant rate', () => {
    const e = new EtaEstimator({ minElapsedMs: 0, minFraction: 0 });
    let last = null as number | null;
    for (let t = 100; t <= 5000; t += 100) last = e.update(t, t / 1000, 10, t).etaSeconds; // 1 unit/s, 10 units
    expect(last).not.toBeNull();
    expect(last!).toBeCloseTo(5, 1);
  });

  it('waits for enough elapsed time and work before estimating, and is null when done', () => {
    const e = new EtaEstimator({ minElapsedMs: 1000, minFraction: 0.05 });
    expect(e.update(500, 1, 10, 500).etaSeconds).toBeNull(); // too early
    expect(e.update(1500, 0.2, 10, 1500).etaSeconds).toBeNull(); // 2 % done
    expect(e.update(2000, 1, 10, 2000).etaSeconds).not.toBeNull();
    expect(e.update(3000, 10, 10, 3000).etaSeconds).toBeNull();
    expect(e.update(3000, 10, 10, 3000).fraction).toBe(1);
  });

  it('does not jump when one big item stalls the progress, and counts down meanwhile', () => {
    // Steady 1 unit/s to 30 of 100, then a 5 s stall (one large tensor), then steady again.
    const e = new EtaEstimator({ minElapsedMs: 0, minFraction: 0 });
    let t = 0;
    let eta = 0;
    for (; t <= 30_000; t += 250) eta = e.update(t, t / 1000, 100, t).etaSeconds!;
    expect(eta).toBeCloseTo(70, 0);
    const before = eta;
    const seen: number[] = [];
    for (let s = 250; s <= 5000; s += 250) seen.push(e.update(t + s, 30, 100, t + s).etaSeconds!);
    // The raw estimate doubles within the window (recent rate → 0); the shown one moves gradually.
    for (let i = 1; i < seen.length; i++) expect(Math.abs(seen[i] - seen[i - 1])).toBeLessThan(5);
    expect(Math.max(...seen)).toBeLessThan(before * 1.6);
  });

  it('reports the average and recent rates', () => {
    const e = new EtaEstimator({ windowMs: 1000 });
    e.update(0, 0, 100, 0);
    e.update(1000, 10, 100, 1000);
    const r = e.update(2000, 40, 100, 2000);
    expect(r.averageRate).toBeCloseTo(20, 6);
    expect(r.rate).toBeCloseTo(30, 6);
    expect(r.elapsedSeconds).toBe(2);
    expect(r.fraction).toBeCloseTo(0.4, 9);
  });
});

describe('Throttle', () => {
  it('passes at most once per interval for one key; a new key or force always passes', () => {
    const th = new Throttle(100);
    expect(th.ready(0, 'a')).toBe(true);
    expect(th.ready(50, 'a')).toBe(false);
    expect(th.ready(99, 'a')).toBe(false);
    expect(th.ready(100, 'a')).toBe(true);
    expect(th.ready(120, 'b')).toBe(true);
    expect(th.ready(130, 'b')).toBe(false);
    expect(th.ready(130, 'b', true)).toBe(true);
  });
});

describe('formatRate', () => {
  it('keeps slow rates readable', () => {
    expect(formatRate(0)).toBe('0 MB/s');
    expect(formatRate(52_000)).toBe('0.05 MB/s');
    expect(formatRate(3_000)).toBe('3.0 kB/s');
    expect(formatRate(12_345_678)).toBe('12.3 MB/s');
    expect(formatRate(456e6)).toBe('456 MB/s');
  });
});

describe('RunMeter / runFraction', () => {
  const ev = (o: Partial<import('./pipeline/events').ProgressEvent>) => ({
    phase: 'read' as const, tensorIndex: 0, tensorCount: 10, tensorName: 't', bytesRead: 0, bytesToRead: 1000,
    bytesWritten: 0, bytesToWrite: 500, elapsedMs: 0, ...o,
  });

  it('weights tensors and bytes equally, 0 while preparing and 1 when done', async () => {
    const { runFraction } = await import('./progress');
    expect(runFraction(ev({ phase: 'prepare' }))).toBe(0);
    expect(runFraction(ev({ tensorIndex: 5, bytesRead: 250 }))).toBeCloseTo(0.375, 9);
    expect(runFraction(ev({ phase: 'finalize', tensorIndex: 5, bytesRead: 250 }))).toBe(0.98);
    expect(runFraction(ev({ phase: 'done' }))).toBe(1);
  });

  it('reports the recent read rate and a time left that matches a steady run', async () => {
    const { RunMeter } = await import('./progress');
    const m = new RunMeter();
    let last = m.update(ev({}));
    // 10 tensors of 100 bytes, one per second.
    for (let t = 100; t <= 4000; t += 100) {
      last = m.update(ev({ elapsedMs: t, tensorIndex: Math.floor(t / 1000), bytesRead: t / 10 }));
    }
    expect(last.readBytesPerSec).toBeCloseTo(100, 6);
    expect(last.averageReadBytesPerSec).toBeCloseTo(100, 6);
    expect(last.etaSeconds).not.toBeNull();
    expect(last.etaSeconds!).toBeGreaterThan(4.5);
    expect(last.etaSeconds!).toBeLessThan(7.5);
  });
});
