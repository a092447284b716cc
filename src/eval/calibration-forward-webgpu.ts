/**
 * The core's CalibrationForward port on the WebGPU forward pass (forward-webgpu.ts), on a shared
 * GPU runtime: the pass holds no layer weights of its own (perCallLayers); each runLayer brings
 * the pipeline's weights for that layer — projections, norms and biases, which after fusion and
 * rotation differ from the checkpoint's — as device copies kept by array identity (the port's
 * LayerWeights contract), so a layer's weights are uploaded once per pass over the calibration
 * set, not once per sample. The hooks hand the pipeline the pass's device activations: a GPTQ
 * engine on the same runtime (WebGpuBackend.gptq) accumulates its Hessians from them in place.
 *
 * The residual stream between layers is on the host (the port's Float32Array), one upload and
 * one readback of [T × hidden] per sample and layer pass. The embedding is a row gather on the
 * host (a copy, the same as the CPU pass's); the GPU pass gets a one-token vocabulary so the
 * table is not uploaded (it never runs the embedding or the head).
 */
import type { CalibrationForward, CalibrationForwardFactory, LayerWeights } from '../core/ports';
import { EMBEDDING, FINAL_NORM, LAYER_NORMS, LINEAR_INPUTS, PROJECTIONS, PROJECTION_INFO, layerNormName, projectionName, projectionShape } from '../core/qwen2/tensors';
import type { Backend } from '../core/ports';
import { gpuRuntimeOf } from '../backends/webgpu/select';
import { USAGE_STORAGE, type GpuRuntime } from '../gpu/runtime';
import { TiledMatrix } from '../gpu/tiled';
import { cpuCalibrationForward } from './calibration-forward';
import type { LinearHooks } from './forward';
import { createQwen2WebGpu, GpuActivation } from './forward-webgpu';

export interface WebGpuCalibrationOptions {
  /** Largest buffer bound to one binding (tests lower it to force tiling). */
  maxBindingBytes?: number;
}

/** Device copies of one layer's tensors, keyed by the layer-free name; rewritten when the array changes. */
class LayerCache {
  private readonly entries = new Map<string, { src: Float32Array; mat: TiledMatrix }>();
  constructor(private readonly rt: GpuRuntime, private readonly maxBinding: number) {}

  get(key: string, src: Float32Array, rows: number, cols: number): TiledMatrix {
    let e = this.entries.get(key);
    if (!e) {
      const mat = TiledMatrix.allocate(rows, cols, this.maxBinding, (bytes, label) => this.rt.createBuffer(label, bytes, USAGE_STORAGE), key);
      e = { src: new Float32Array(0), mat };
      this.entries.set(key, e);
    }
    if (e.src !== src) {
      // queue order: lands after the previous call's submitted work, before this call's
      e.mat.write(this.rt, src);
      e.src = src;
    }
    return e.mat;
  }

  destroy(): void {
    for (const e of this.entries.values()) e.mat.destroy();
    this.entries.clear();
  }
}

export function webgpuCalibrationForward(runtime: GpuRuntime, opts: WebGpuCalibrationOptions = {}): CalibrationForwardFactory {
  return async (dims, embedding) => {
    const d = dims.hidden;
    if (embedding.length !== dims.vocab * d) throw new Error(`calibration forward: embedding has ${embedding.length} values, expected ${dims.vocab}×${d}`);
    const maxBinding = Math.floor(Math.min(opts.maxBindingBytes ?? Infinity, runtime.limits.maxBindingBytes) / 4) * 4;
    const oneToken = new Float32Array(d);
    const ones = new Float32Array(d).fill(1);
    const model = await createQwen2WebGpu(
      runtime,
      { ...dims, vocab: 1 },
      { get: (name) => (name === EMBEDDING ? oneToken : name === FINAL_NORM ? ones : undefined), has: (name) => name === EMBEDDING || name === FINAL_NORM },
      { perCallLayers: true, maxBindingBytes: maxBinding },
    );
    const cache = new LayerCache(runtime, maxBinding);
    const need = (weights: LayerWeights, name: string): Float32Array => {
      const w = weights(name);
      if (!w) throw new Error(`calibration forward: no ${name}`);
      return w;
    };
    const forward: CalibrationForward = {
      description: `${runtime.description} forward pass`,
      async embed(ids) {
        const out = new Float32Array(ids.length * d);
        ids.forEach((id, t) => {
          if (!Number.isInteger(id) || id < 0 || id >= dims.vocab) throw new Error(`token id ${id} out of range [0, ${dims.vocab})`);
          out.set(embedding.subarray(id * d, (id + 1) * d), t * d);
        });
        return out;
      },
      async runLayer(layer, hidden, weights, onInput) {
        const T = hidden.length / d;
        if (!Number.isInteger(T) || T < 1) throw new Error(`calibration forward: ${hidden.length} values are not whole rows of ${d}`);
        const subs = {
          weights: {} as Record<(typeof PROJECTIONS)[number], TiledMatrix>,
          biases: {} as Record<(typeof PROJECTIONS)[number], TiledMatrix | null>,
          norms: {} as Record<(typeof LAYER_NORMS)[number], TiledMatrix>,
        };
        for (const p of PROJECTIONS) {
          const [out, inDim] = projectionShape(dims, p);
          subs.weights[p] = cache.get(p, need(weights, projectionName(layer, p)), out, inDim);
          const b = PROJECTION_INFO[p].bias ? weights(projectionName(layer, p, 'bias')) : undefined;
          subs.biases[p] = b ? cache.get(`${p}.bias`, b, 1, out) : null;
        }
        for (const n of LAYER_NORMS) subs.norms[n] = cache.get(n, need(weights, layerNormName(layer, n)), 1, d);
        const hooks: LinearHooks<GpuActivation> = {};
        // The pass's GpuActivation is the port's LinearInputRows, and device rows of `runtime`.
        if (onInput) for (const input of LINEAR_INPUTS) hooks[input] = (x) => onInput(input, x);
        const buf = runtime.createBuffer(`layer ${layer} input`, hidden.byteLength, USAGE_STORAGE);
        try {
          runtime.writeF32(buf, hidden);
          const out = await model.runLayer(layer, new GpuActivation(runtime, buf, T, d, true), { ...subs, hooks });
          try {
            return await out.read();
          } finally {
            model.release(out);
          }
        } finally {
          buf.destroy();
        }
      },
      async dispose() {
        cache.destroy();
        model.dispose();
      },
    };
    return forward;
  };
}

/** The calibration forward pass for a run on `backend`: on its GPU when it has one (shared device), else the CPU's. */
export function calibrationForwardFor(backend: Backend, opts: WebGpuCalibrationOptions = {}): CalibrationForwardFactory {
  const rt = gpuRuntimeOf(backend);
  return rt ? webgpuCalibrationForward(rt, opts) : cpuCalibrationForward;
}
