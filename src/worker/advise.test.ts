// The worker's advise operation on the real tinystories-260k fixture (CPU backend, a memory
// source): the rows the page hears are the sweep's own figures, in grid order; a grid that needs
// calibration without one is refused as data; cancelAdvice stops it with CancelledError.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../backends/cpu/cpu-backend';
import { DEFAULT_SETTINGS } from '../core/settings';
import { BUILTIN_TEXT, BUILTIN_TEXT_LABEL } from '../eval/builtin-text';
import { runSweep, type SweepPointResult, type SweepProgress } from '../eval/sweep';
import { memoryModelSource } from '../../test/support/memory';
import { readFolder } from '../../test/support/bundle';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite } from '../../test/support/fixture';
import { createPipelineApi, type WorkerDeps } from './handler';
import type { AdviceRequest } from './protocol';

const files = HAS_FIXTURE ? readFolder(FIXTURE_DIR) : {};

function harness() {
  let closed = 0;
  const deps: WorkerDeps = {
    openSource: async () => ({ source: memoryModelSource(files, 'tinystories-260k'), close: () => { closed++; } }),
    openBackend: async () => new CpuBackend(),
    runPipeline: async () => { throw new Error('not used by advise'); },
    now: () => performance.now(),
  };
  return { api: createPipelineApi(deps), closed: () => closed };
}

const request: AdviceRequest = {
  source: { kind: 'hub', repo: 'fake/tinystories-260k' }, settings: DEFAULT_SETTINGS, backend: 'cpu',
  grid: { methods: ['rtn'], codebooks: ['uniform', 'learned'], w8Budgets: [0] },
  target: { model: 'tinystories-260k' }, modelArg: 'tinystories-260k',
  text: { kind: 'builtin' }, seqlen: 128, windows: 2,
};

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('worker advise on tinystories-260k'), () => {
  it('streams each point as it is scored; the rows equal runSweep in-process, in grid order', async () => {
    const h = harness();
    const points: SweepPointResult[] = [];
    const progress: SweepProgress[] = [];
    const out = await h.api.advise(request, { onPoint: (r) => points.push(r), onProgress: (p) => progress.push(p), onNotice: () => undefined });
    if (!out.ok) throw new Error(out.error.message);
    expect(points.map((p) => [p.point.method, p.point.codebook, p.point.w8Budget])).toEqual([['rtn', 'uniform', 0], ['rtn', 'learned', 0]]);
    expect(out.result.points).toEqual(points);
    expect(progress.map((p) => p.stage)).toEqual(expect.arrayContaining(['reference', 'quantize', 'score']));
    expect(h.closed()).toBe(1);
    const direct = await runSweep({
      source: memoryModelSource(files, 'tinystories-260k'), target: request.target, modelArg: request.modelArg, settings: DEFAULT_SETTINGS,
      grid: request.grid, backend: new CpuBackend(), evalText: { text: BUILTIN_TEXT, label: BUILTIN_TEXT_LABEL, seqlen: 128, windows: 2 },
    });
    expect(out.result.pplOriginal).toBe(direct.pplOriginal);
    expect(points.map((p) => p.ppl)).toEqual(direct.points.map((p) => p.ppl));
    expect(points.map((p) => p.bytes)).toEqual(direct.points.map((p) => p.bytes));
    expect(out.result.windows).toBe(2);
    expect(out.result.predictions).toBe(2 * 127);
    expect(out.result.best).toBe(direct.best);
    expect(points[out.result.best].ppl).toBe(Math.min(...points.map((p) => p.ppl)));
  });

  it('a GPTQ grid without calibration is refused as data, before anything is quantized', async () => {
    const h = harness();
    const points: SweepPointResult[] = [];
    const out = await h.api.advise({ ...request, grid: { methods: ['gptq'], codebooks: ['uniform'], w8Budgets: [0] } }, { onPoint: (r) => points.push(r), onProgress: () => undefined, onNotice: () => undefined });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.name).toBe('InputError');
    expect(out.error.message).toMatch(/GPTQ and W8-budget points need calibration data/);
    expect(points).toEqual([]);
  });

  it('cancelAdvice stops the sweep with CancelledError', async () => {
    const h = harness();
    const points: SweepPointResult[] = [];
    const pending = h.api.advise(request, {
      onPoint: (r) => { points.push(r); void h.api.cancelAdvice(); },
      onProgress: () => undefined, onNotice: () => undefined,
    });
    const out = await pending;
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.name).toBe('CancelledError');
    expect(points).toHaveLength(1);
  });
});
