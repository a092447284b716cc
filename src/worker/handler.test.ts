// The worker's handler with the pipeline, source and backend faked (as WebLLM tests its worker
// handler): what reaches the page — throttled progress with measured ETA, reports, errors as
// data, cancellation, the zip — without a real run.
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { InputError } from '../core/errors';
import type { ProgressEvent } from '../core/pipeline/events';
import type { PipelineResult } from '../core/pipeline/run';
import type { TensorReport } from '../core/pipeline/report';
import type { Backend } from '../core/ports';
import { DEFAULT_SETTINGS } from '../core/settings';
import { memoryModelSource } from '../../test/support/memory';
import { makeTinyQwen2, tinyQwen2Files } from '../../test/support/tiny-qwen2';
import { CpuBackend } from '../backends/cpu/cpu-backend';
import { createPipelineApi, PROGRESS_INTERVAL_MS, type WorkerDeps } from './handler';
import type { RunProgress, RunRequest } from './protocol';

const fakeBackend = { name: 'cpu', description: 'fake CPU', dispose: async () => {} } as unknown as Backend;

function report(i: number): TensorReport {
  return {
    name: `model.layers.0.self_attn.q_proj.weight#${i}`, kind: 'projection', layer: 0, proj: 'q_proj', shape: [4, 4],
    quantized: true, transformed: true, absmaxBefore: 1, absmaxAfter: 0.5,
    error: { relError: 0.05, sqnrDb: 26, maxAbs: 0.1 } as TensorReport['error'],
    baselineError: { relError: 0.08, sqnrDb: 22, maxAbs: 0.2 } as TensorReport['error'],
  };
}

function result(reports: TensorReport[]): PipelineResult {
  return {
    files: [{ path: 'README.md', size: 6 }], reports,
    plan: { quantizedCount: reports.length, rotated: true, writesLmHead: false, tensorCount: reports.length },
    config: {} as PipelineResult['config'], bytesRead: 1000, bytesWritten: 6, elapsedMs: 2000, backend: 'fake CPU',
  };
}

function harness(runPipeline: WorkerDeps['runPipeline']) {
  let clock = 0;
  const closed: string[] = [];
  const deps: WorkerDeps = {
    openSource: async () => ({ source: memoryModelSource({}, 'fake'), close: () => closed.push('source') }),
    openBackend: async () => fakeBackend,
    runPipeline,
    now: () => clock,
  };
  return { api: createPipelineApi(deps), tick: (ms: number) => (clock += ms), closed };
}

const request: RunRequest = {
  source: { kind: 'hub', repo: 'org/fake' }, settings: DEFAULT_SETTINGS, backend: 'cpu', sink: { kind: 'zip' },
  target: { model: 'org/fake' }, modelArg: 'org/fake',
};

function callbacks() {
  const progress: RunProgress[] = [];
  const tensors: TensorReport[] = [];
  const notices: string[] = [];
  const backends: string[] = [];
  return {
    progress, tensors, notices, backends,
    cb: { onProgress: (p: RunProgress) => progress.push(p), onTensor: (r: TensorReport) => tensors.push(r), onNotice: (m: string) => notices.push(m), onBackend: (b: { description: string }) => backends.push(b.description) },
  };
}

describe('pipeline worker handler', () => {
  it('throttles progress, attaches the measured ETA, forwards reports and returns the zip with the README', async () => {
    let h!: ReturnType<typeof harness>;
    h = harness(async (opts, makeSink) => {
      const sink = await makeSink();
      const ev = (o: Partial<ProgressEvent>): ProgressEvent => ({
        phase: 'read', tensorIndex: 0, tensorCount: 10, tensorName: 't', bytesRead: 0, bytesToRead: 1000, bytesWritten: 0, bytesToWrite: 0, elapsedMs: 0, ...o,
      });
      opts.onProgress?.(ev({ phase: 'prepare' }));
      // 1000 events, 2 ms apart, steady: 10 tensors of 100 bytes over 2 s.
      for (let i = 1; i <= 1000; i++) {
        h.tick(2);
        opts.onProgress?.(ev({ elapsedMs: 2 * i, tensorIndex: Math.floor(i / 100), bytesRead: i, phase: i % 100 === 0 ? 'write' : 'read' }));
      }
      opts.onTensor?.(report(0));
      opts.onTensor?.(report(1));
      const w = await sink.createFile('README.md', 6);
      await w.write(new TextEncoder().encode('# card'));
      await w.close();
      await sink.finalize();
      return result([report(0), report(1)]);
    });
    const c = callbacks();
    const out = await h.api.run(request, c.cb);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    // 2 s at one message per 100 ms, plus the phase changes (prepare→read, read↔write ×10 each way).
    expect(c.progress.length).toBeGreaterThanOrEqual(2000 / PROGRESS_INTERVAL_MS);
    expect(c.progress.length).toBeLessThanOrEqual(2000 / PROGRESS_INTERVAL_MS + 1 + 2 * 10 + 2);
    const last = c.progress[c.progress.length - 1];
    expect(last.estimate).toBeDefined();
    expect(last.estimate!.readBytesPerSec).toBeCloseTo(500, 0); // 1 byte per 2 ms
    expect(last.estimate!.etaSeconds).not.toBeNull();
    expect(last.estimate!.etaSeconds!).toBeLessThan(0.5); // nearly done
    expect(c.tensors.map((t) => t.name)).toEqual([report(0).name, report(1).name]);
    expect(c.backends).toEqual(['fake CPU']);
    expect(out.result.readme).toBe('# card');
    expect(out.result.summary).toMatch(/layer/);
    const zip = unzipSync(new Uint8Array(await out.result.zipBlob!.arrayBuffer()));
    expect(new TextDecoder().decode(zip['README.md'])).toBe('# card');
    expect(h.closed).toEqual(['source']);
  });

  it('cancel stops the run: the outcome is CancelledError, as data', async () => {
    const h = harness(async (opts) => {
      await new Promise<void>((resolve) => opts.signal!.addEventListener('abort', () => resolve(), { once: true }));
      throw new DOMException('aborted', 'AbortError');
    });
    const c = callbacks();
    const pending = h.api.run(request, c.cb);
    await new Promise((r) => setTimeout(r, 10));
    await h.api.cancel();
    const out = await pending;
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.name).toBe('CancelledError');
    expect(h.closed).toEqual(['source']);
  });

  it("keeps an InputError's file and tensor across the boundary", async () => {
    const h = harness(async () => {
      throw new InputError('tensor has the wrong shape', { file: 'model.safetensors', tensor: 'model.norm.weight' });
    });
    const out = await h.api.run(request, callbacks().cb);
    expect(out).toEqual({ ok: false, error: { name: 'InputError', message: 'tensor has the wrong shape', file: 'model.safetensors', tensor: 'model.norm.weight' } });
  });

  it('inspect runs the core preflight on the opened source and reports a blocking rotation', async () => {
    const m = makeTinyQwen2({ hidden: 92, intermediate: 64, layers: 1, heads: 23, kvHeads: 1, vocab: 32, tie: true, seed: 1 });
    const files = await tinyQwen2Files(m, { dtype: 'BF16' });
    const src = memoryModelSource(Object.fromEntries(files.map((f) => [f.path, f.bytes])), 'h92');
    const api = createPipelineApi({
      openSource: async () => ({ source: src, close() {} }),
      openBackend: async () => fakeBackend,
      runPipeline: async () => { throw new Error('not called'); },
      now: () => 0,
    });
    const out = await api.inspect({ kind: 'files', files: [], label: 'h92' }, DEFAULT_SETTINGS);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.preflight.label).toBe('h92');
    expect(out.preflight.blocking).toMatch(/n = 92/);
    expect(out.preflight.suggestions[0].settings).toEqual({ rotation: 'block', blockSize: 4 });
  });

  it('calibrate times the real pipeline on each backend; a WebGPU request that falls back to the CPU is not timed twice', async () => {
    const opened: string[] = [];
    const api = createPipelineApi({
      openSource: async () => { throw new Error('not called'); },
      openBackend: async (kind) => { opened.push(kind); return new CpuBackend(); },
      runPipeline: async () => { throw new Error('not called'); },
      now: () => performance.now(),
    });
    const out = await api.calibrate();
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(opened).toEqual(['cpu', 'webgpu']);
    expect(out.calibrations.map((c) => c.backend)).toEqual(['cpu']);
    const c = out.calibrations[0];
    expect(c.software).toBe(false);
    // Two generated models: 1 layer (8 quantized tensors) and 2 layers (15).
    expect(c.samples.map((x) => x.tensors)).toEqual([8, 15]);
    expect(c.samples[1].parameters).toBeGreaterThan(5 * c.samples[0].parameters);
    expect(c.perParamNs).toBeGreaterThan(0);
    // Two samples, two unknowns: unless a coefficient was clamped at 0, the fit goes through both.
    if (c.perTensorMs > 0) {
      for (const x of c.samples) expect(c.perTensorMs * x.tensors + (c.perParamNs * x.parameters) / 1e6).toBeCloseTo(x.ms, 6);
    }
    // Asked again: the same measurement, not a new one.
    const again = await api.calibrate();
    expect(again.ok && again.calibrations[0].samples).toEqual(c.samples);
  });

  describe('GPTQ: the worker builds the calibration set before the pipeline runs', () => {
    async function gptqHarness() {
      const m = makeTinyQwen2({ hidden: 32, intermediate: 48, layers: 1, heads: 2, kvHeads: 1, vocab: 40, tie: true, seed: 2 });
      const files = Object.fromEntries((await tinyQwen2Files(m, { dtype: 'F32' })).map((f) => [f.path, f.bytes]));
      const seen: { calibration?: unknown }[] = [];
      const api = createPipelineApi({
        openSource: async () => ({ source: memoryModelSource(files, 'tiny'), close: () => undefined }),
        openBackend: async () => fakeBackend,
        runPipeline: async (opts) => { seen.push({ calibration: opts.calibration }); return result([]); },
        now: () => 0,
      });
      return { api, seen };
    }
    const gptq = { ...DEFAULT_SETTINGS, method: 'gptq' as const };
    const spec = { source: 'file:calib.json', samples: 128, seqlen: 512, seed: 0 };

    it('a dropped calib.json: its samples, sha256 and source reach runPipeline, with the link spec; a notice says what was built', async () => {
      const { api, seen } = await gptqHarness();
      const c = callbacks();
      const file = new Blob([JSON.stringify([{ input_ids: [1, 2, 3] }, { input_ids: [4, 5, 6] }])]);
      const out = await api.run({ ...request, settings: gptq, calibration: { spec, file, fileName: 'calib.json' } }, c.cb);
      expect(out.ok).toBe(true);
      expect(seen).toHaveLength(1);
      expect(seen[0].calibration).toMatchObject({ samples: [[1, 2, 3], [4, 5, 6]], source: 'calib.json', spec, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(c.notices.some((n) => n.startsWith('Calibration: calib.json, 2 × 3 tokens (calib.json samples as given)'))).toBe(true);
    });

    it('ids outside the vocabulary, or no calibration at all: an InputError and the pipeline never starts', async () => {
      const { api, seen } = await gptqHarness();
      const bad = await api.run({ ...request, settings: gptq, calibration: { spec, file: new Blob([JSON.stringify([{ input_ids: [1, 40] }])]), fileName: 'calib.json' } }, callbacks().cb);
      expect(bad.ok).toBe(false);
      if (!bad.ok) {
        expect(bad.error.name).toBe('InputError');
        expect(bad.error.message).toMatch(/calib\.json: sample 0: token id 40 at position 1 is outside the model's vocabulary \(0 to 39\)/);
      }
      const none = await api.run({ ...request, settings: gptq }, callbacks().cb);
      expect(!none.ok && none.error.message).toMatch(/method gptq needs calibration data/);
      expect(seen).toEqual([]);
    });
  });
});
