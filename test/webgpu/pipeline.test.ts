// Whole pipeline on the WebGPU backend vs the CPU backend: identical bundle bytes. Plus the
// CPU fallback: a device lost mid-run (a real Dawn device destroyed, and a mock GPU backend)
// must still give the CPU's bytes.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import type { Backend } from '../../src/core/ports';
import { runPipeline } from '../../src/core/pipeline/run';
import { DEFAULT_SETTINGS, type QuantSettings } from '../../src/core/settings';
import { memorySink } from '../support/memory';
import { GpuUnavailableError } from '../../src/backends/webgpu/errors';
import { createFallbackBackend } from '../../src/backends/webgpu/fallback';
import { createBackend } from '../../src/backends/webgpu/select';
import type { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend';
import { firstBitDiff, gpuBackend, gpuEnv, loseDevice } from '../support/gpu';
import { tinyCheckpoint } from '../support/tiny-checkpoint';

const env = await gpuEnv();
if (!env.adapter) console.warn(`WebGPU pipeline tests skipped: ${env.reason}`);

const SETTINGS: [string, Partial<QuantSettings>][] = [
  ['bits 4 sp/mse full', { bits: 4, scheme: 'sp', clip: 'mse', rotation: 'full' }],
  ['bits 8 per_tensor/absmax block 16', { bits: 8, scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: 16 }],
  ['bits 16 f32 none', { bits: 16, rotation: 'none', dtype: 'f32' }],
  // Fitted per-column input scales: fitted on the host, the row steps from the backend's MSE search.
  ['bits 4 sp/mse none, fitted input scales', { bits: 4, scheme: 'sp', clip: 'mse', rotation: 'none', inputScales: 'fitted' }],
];

async function bundle(backend: Backend, settings: Partial<QuantSettings>): Promise<Record<string, Uint8Array>> {
  const sink = memorySink();
  await runPipeline({
    source: await tinyCheckpoint(), sink, backend,
    settings: { ...DEFAULT_SETTINGS, ...settings }, target: { model: 'test/tiny-qwen2' },
  });
  expect(sink.finalized).toBe(true);
  return sink.files;
}

function expectSameFiles(got: Record<string, Uint8Array>, want: Record<string, Uint8Array>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const path of Object.keys(want)) {
    const diff = firstBitDiff(got[path], want[path]);
    expect(diff, `${path}: ${diff}`).toBeNull();
  }
}

const cpuBundles = new Map<string, Record<string, Uint8Array>>();
async function cpuBundle(name: string, settings: Partial<QuantSettings>): Promise<Record<string, Uint8Array>> {
  if (!cpuBundles.has(name)) cpuBundles.set(name, await bundle(new CpuBackend(), settings));
  return cpuBundles.get(name)!;
}

describe.skipIf(!env.adapter)('runPipeline: webgpu backend = cpu backend, byte for byte', () => {
  for (const tiled of [false, true]) {
    for (const [name, settings] of SETTINGS) {
      it(`${name}${tiled ? ' (forced tiling, 4 KiB tiles)' : ''}`, async () => {
        const gpu = await gpuBackend(env, tiled ? { maxTileBytes: 4096 } : {});
        try {
          expectSameFiles(await bundle(gpu, settings), await cpuBundle(name, settings));
        } finally {
          await gpu.dispose();
        }
      });
    }
  }
});

/** Calls `hook` before the n-th backend call (counting every method), once. */
function failAfter<T extends Backend>(b: T, n: number, hook: () => void): T {
  let calls = 0;
  return new Proxy(b, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'dispose') return v;
      return (...args: unknown[]) => {
        if (++calls === n) hook();
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A mock "GPU" backend: the CPU backend that reports a lost device from its n-th call on. */
function mockGpuThatDies(n: number): Backend {
  const inner = new CpuBackend();
  let calls = 0;
  let lost = false;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'name') return 'webgpu';
      if (prop === 'description') return 'mock GPU';
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'dispose' || prop === 'release') return v;
      return (...args: unknown[]) => {
        if (++calls >= n) lost = true;
        if (lost) return Promise.reject(new GpuUnavailableError('device-lost', 'mock device lost'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('fallback to the CPU when the GPU dies mid-run (mock GPU)', () => {
  for (const n of [1, 4, 9, 23, 61]) {
    it(`mock device lost at call ${n}: same bytes as the CPU, one notice`, async () => {
      const notices: string[] = [];
      const b = createFallbackBackend(mockGpuThatDies(n), new CpuBackend(), (m) => notices.push(m));
      const [name, settings] = SETTINGS[0];
      expectSameFiles(await bundle(b, settings), await cpuBundle(name, settings));
      expect(notices.length).toBe(1);
      expect(b.fellBack).toBe(true);
    });
  }
});

describe('fallback replays quantizeToCodebook (mock GPU)', () => {
  // upload (1), scaleColumns (2), quantizeToCodebook (3), rowSquaredErrors (4), read (5): the loss at
  // each call; a matrix quantized on the dead "GPU" is rebuilt on the CPU from its recipe.
  for (const n of [1, 3, 4, 5]) {
    it(`device lost at call ${n}: same values and counts as the CPU`, async () => {
      const rows = 13;
      const cols = 40;
      const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
      const bytes = new Uint8Array(data.buffer);
      const gamma = Float32Array.from({ length: cols }, (_, j) => 0.5 + j / cols);
      const step = new Float32Array(rows).fill(0.5);
      const inv = new Float32Array(rows).fill(2);
      const cb = new Float32Array([-6, -3.5, -1.75, -0.5, 0, 0.625, 2, 7.5]);
      const run = async (b: Backend) => {
        const m = await b.upload(bytes, 'F32', rows, cols);
        await b.scaleColumns(m, gamma);
        const q = await b.quantizeToCodebook(m, step, inv, cb, true);
        const e = await b.rowSquaredErrors(m, q.mat);
        return { counts: Array.from(q.codeCounts), diff: e.diff, f16: await b.read(q.mat, 'F16') };
      };
      const notices: string[] = [];
      const b = createFallbackBackend(mockGpuThatDies(n), new CpuBackend(), (m) => notices.push(m));
      const got = await run(b);
      const want = await run(new CpuBackend());
      expect(got.counts).toEqual(want.counts);
      expect(firstBitDiff(got.diff, want.diff)).toBeNull();
      expect(firstBitDiff(got.f16, want.f16)).toBeNull();
      expect(b.fellBack).toBe(true);
      expect(notices.length).toBe(1);
    });
  }
});

describe.skipIf(!env.adapter)('fallback to the CPU when a real WebGPU device is lost mid-run', () => {
  for (const n of [7, 30]) {
    it(`device destroyed before call ${n}`, async () => {
      const gpu = await gpuBackend(env);
      const notices: string[] = [];
      const dying = failAfter<WebGpuBackend>(gpu, n, () => loseDevice(gpu));
      const b = createFallbackBackend(dying, new CpuBackend(), (m) => notices.push(m));
      const [name, settings] = SETTINGS[0];
      expectSameFiles(await bundle(b, settings), await cpuBundle(name, settings));
      expect(b.fellBack).toBe(true);
      expect(notices.length).toBe(1);
      expect(notices[0]).toMatch(/GPU unavailable/);
    });
  }
});

describe('createBackend', () => {
  it('cpu', async () => {
    expect((await createBackend('cpu')).name).toBe('cpu');
  });
  it('auto without any GPU falls back to the CPU with a notice', async () => {
    const notices: string[] = [];
    const noGpu = { requestAdapter: async () => null } as unknown as GPU;
    const b = await createBackend('auto', { gpu: noGpu, onNotice: (m) => notices.push(m) });
    expect(b.name).toBe('cpu');
    expect(notices[0]).toMatch(/WebGPU unavailable/);
    await expect(createBackend('webgpu', { gpu: noGpu, strict: true })).rejects.toBeInstanceOf(GpuUnavailableError);
  });
});
