// The shared GPU runtime (src/gpu): uniform packing, the dispatch grid (split above the
// per-dimension limit, checked end to end on a real >65535-workgroup dispatch), row tiles, error
// scopes (validation → Error naming the call; a lost device → GpuUnavailableError), and one
// runtime shared by two stages: a backend that did not create its runtime leaves the device alive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import { createWebGpuBackend } from '../../src/backends/webgpu/webgpu-backend';
import { GpuUnavailableError } from '../../src/gpu/errors';
import { createNodeGpuRuntime } from '../../src/gpu/node';
import { describeAdapter, packUniform, Transients, type GpuRuntime } from '../../src/gpu/runtime';
import { rowsPerTile, TiledMatrix } from '../../src/gpu/tiled';
import { f32Bytes, firstBitDiff, gpuEnv, loseDevice, randomMatrix } from '../support/gpu';

const env = await gpuEnv();

describe('runtime helpers (no device)', () => {
  it('packUniform: one little-endian word per field, u32 or f32, padded to 16 bytes', () => {
    const b = packUniform([1, 0xffffffff, { f32: 0.5 }, 7, 9]);
    expect(b.byteLength).toBe(32);
    const dv = new DataView(b);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getFloat32(8, true), dv.getUint32(12, true), dv.getUint32(16, true), dv.getUint32(28, true)]).toEqual([1, 0xffffffff, 0.5, 7, 9, 0]);
    expect(packUniform([]).byteLength).toBe(16);
  });

  it('describeAdapter: distinct non-empty parts, optional prefix', () => {
    expect(describeAdapter({ vendor: 'v', architecture: '', device: 'v', description: 'd' })).toBe('v / d');
    expect(describeAdapter(null, 'Dawn opengl')).toBe('Dawn opengl: unknown adapter');
  });

  it('rowsPerTile: rows that fit a tile; a row wider than a tile is an error', () => {
    expect(rowsPerTile(10, 4096)).toBe(102);
    expect(() => rowsPerTile(2000, 4096)).toThrow(/one row of 2000 f32 \(8000 bytes\) exceeds the storage binding limit 4096/);
  });
});

describe.skipIf(!env.adapter)('GpuRuntime on Dawn', () => {
  let rt: GpuRuntime;
  beforeAll(async () => {
    rt = await createNodeGpuRuntime();
  });
  afterAll(() => rt?.destroy());

  it('requests the adapter\'s limits and names the adapter', () => {
    expect(rt.limits.maxBindingBytes).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(rt.limits.maxWorkgroupsPerDim).toBeGreaterThanOrEqual(65535);
    expect(rt.adapterName).toMatch(/^Dawn (opengl|vulkan): /);
    expect(rt.description).toMatch(/^WebGPU \(/);
  });

  it('grid: one dimension up to the limit, then the fewest rows of at most the limit covering n', () => {
    const max = rt.limits.maxWorkgroupsPerDim;
    expect(rt.grid(0)).toEqual([1, 1]);
    expect(rt.grid(max)).toEqual([max, 1]);
    for (const n of [max + 1, 3 * max + 5, 1e7]) {
      const [x, y] = rt.grid(n);
      expect(x).toBeLessThanOrEqual(max);
      expect(x * y).toBeGreaterThanOrEqual(n);
      expect(x * (y - 1)).toBeLessThan(n);
    }
  });

  it('a dispatch of more than maxComputeWorkgroupsPerDimension workgroups (split grid) equals the CPU bit for bit', async () => {
    // scale_columns runs 128 elements per workgroup: 2048 × 4099 needs 65584 workgroups.
    const [rows, cols] = [2048, 4099];
    expect(Math.ceil((rows * cols) / 128)).toBeGreaterThan(rt.limits.maxWorkgroupsPerDim);
    const gpu = await createWebGpuBackend({ runtime: rt });
    const cpu = new CpuBackend();
    const bytes = f32Bytes(randomMatrix(rows, cols, 3));
    const gamma = randomMatrix(1, cols, 4, 1);
    const out: Uint8Array[] = [];
    for (const b of [cpu, gpu]) {
      const m = await b.upload(bytes, 'F32', rows, cols);
      await b.scaleColumns(m, gamma);
      out.push(await b.read(m, 'F32'));
      b.release(m);
    }
    expect(firstBitDiff(out[1], out[0])).toBeNull();
    await gpu.dispose();
    expect(rt.isDestroyed).toBe(false);
  });

  it('TiledMatrix: tiles within the limit, written and read back exactly', async () => {
    const temps = new Transients(rt);
    const data = randomMatrix(37, 30, 9);
    const m = TiledMatrix.allocate(37, 30, 1024, (bytes, label) => temps.zeroed(label, bytes), 'test');
    expect(m.tiles.map((t) => t.rows)).toEqual([8, 8, 8, 8, 5]);
    expect(m.tiles.every((t) => t.rows * 30 * 4 <= 1024)).toBe(true);
    m.write(rt, data);
    expect(firstBitDiff(await m.read(rt), data)).toBeNull();
    temps.destroyAll();
  });

  it('scoped: a validation error becomes an Error naming the call, and the runtime stays usable', async () => {
    const bad = rt.scoped('a broken dispatch', () => {
      const enc = rt.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      rt.dispatch(pass, 'scale_columns', [rt.createBuffer('only one binding', 16)], 1); // needs three
      pass.end();
      rt.device.queue.submit([enc.finish()]);
    });
    await expect(bad).rejects.toThrow(/WebGPU validation error in a broken dispatch/);
    await expect(bad).rejects.not.toBeInstanceOf(GpuUnavailableError);
    expect(await rt.scoped('a read', () => rt.readF32(rt.createFilled('x', Float32Array.of(1, 2, 3)), 3))).toEqual(Float32Array.of(1, 2, 3));
  });
});

describe.skipIf(!env.adapter)('one runtime, two stages, and its loss', () => {
  it('a backend made without a runtime owns (and destroys) its own; a lost device is GpuUnavailableError for every stage on it', async () => {
    const own = await createWebGpuBackend({ adapter: (await gpuEnv()).adapter! });
    const m = await own.upload(f32Bytes(Float32Array.of(1, 2)), 'F32', 1, 2);
    own.release(m);
    await own.dispose();
    expect(own.runtime.isDestroyed).toBe(true);

    const rt = await createNodeGpuRuntime();
    const a = await createWebGpuBackend({ runtime: rt });
    const b = await createWebGpuBackend({ runtime: rt });
    const ma = await a.upload(f32Bytes(Float32Array.of(1, -3)), 'F32', 1, 2);
    expect(Array.from(await b.rowAbsMax(await b.upload(f32Bytes(Float32Array.of(4, -5)), 'F32', 1, 2)))).toEqual([5]);
    loseDevice(rt);
    await rt.lostPromise;
    for (const p of [a.rowAbsMax(ma), b.upload(f32Bytes(Float32Array.of(1)), 'F32', 1, 1), rt.scoped('anything', () => 1)]) {
      const e = await p.catch((x) => x);
      expect(e).toBeInstanceOf(GpuUnavailableError);
      expect((e as GpuUnavailableError).reason).toBe('device-lost');
    }
    await a.dispose();
    await b.dispose();
  });
});
