/**
 * The core's CalibrationForward port (src/core/ports.ts) on the CPU forward pass: what sequential
 * GPTQ runs each calibration sample through, one decoder layer at a time, with the weights the
 * pipeline has at that moment (the transformed layer, then the quantized one).
 *
 * The forward pass is built once over one layer's worth of shared buffers: every layer's tensor
 * names map to the same arrays, and before a layer runs the pipeline's weights for it are copied
 * in. So memory is one layer (plus the embedding), whatever the depth.
 */
import type { CalibrationForward, CalibrationForwardFactory, LayerWeights, LinearInputHook } from '../core/ports';
import type { Qwen2Dims } from '../core/qwen2/config';
import {
  EMBEDDING, FINAL_NORM, LAYER_NORMS, LINEAR_INPUTS, PROJECTIONS, PROJECTION_INFO, layerNormName, projectionName, projectionShape,
} from '../core/qwen2/tensors';
import { CpuActivation, createQwen2Cpu } from './forward-cpu';
import type { LinearHooks } from './forward';

/** The buffers one layer's tensors live in while it runs, keyed by the name of layer 0's tensor. */
function layerBuffers(dims: Qwen2Dims): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const n of LAYER_NORMS) m.set(layerNormName(0, n), new Float32Array(dims.hidden));
  for (const p of PROJECTIONS) {
    const [out, inDim] = projectionShape(dims, p);
    m.set(projectionName(0, p), new Float32Array(out * inDim));
    if (PROJECTION_INFO[p].bias) m.set(projectionName(0, p, 'bias'), new Float32Array(out));
  }
  return m;
}

/** `model.layers.7.mlp.up_proj.weight` → `model.layers.0.mlp.up_proj.weight`. */
const asLayer0 = (name: string): string => name.replace(/^model\.layers\.\d+\./, 'model.layers.0.');

export const cpuCalibrationForward: CalibrationForwardFactory = async (dims, embedding) => {
  const shared = layerBuffers(dims);
  const finalNorm = new Float32Array(dims.hidden).fill(1);
  const model = createQwen2Cpu(dims, {
    get(name) {
      if (name === EMBEDDING) return embedding;
      if (name === FINAL_NORM) return finalNorm;
      return name.startsWith('model.layers.') ? shared.get(asLayer0(name)) : undefined;
    },
  });
  const install = (layer: number, weights: LayerWeights): void => {
    for (const [name0, buf] of shared) {
      const name = name0.replace(/^model\.layers\.0\./, `model.layers.${layer}.`);
      const w = weights(name);
      if (!w) throw new Error(`calibration forward: layer ${layer} has no ${name}`);
      if (w.length !== buf.length) throw new Error(`calibration forward: ${name} has ${w.length} values, expected ${buf.length}`);
      buf.set(w);
    }
  };
  const forward: CalibrationForward = {
    description: 'CPU (TypeScript)',
    async embed(ids) {
      return (await model.embed(ids)).data.slice();
    },
    async runLayer(layer, hidden, weights, onInput?: LinearInputHook) {
      install(layer, weights);
      const rows = hidden.length / dims.hidden;
      const hooks: LinearHooks<CpuActivation> = {};
      if (onInput) for (const input of LINEAR_INPUTS) hooks[input] = (x) => onInput(input, { rows: x.rows, cols: x.cols, host: x.data.subarray(0, x.rows * x.cols), read: () => x.read() });
      // Every layer's names resolve to the shared buffers, so layer 0's slot of the model runs them.
      const out = await model.runLayer(0, new CpuActivation(rows, dims.hidden, hidden), { hooks });
      return out.data;
    },
    async dispose() {
      model.dispose();
    },
  };
  return forward;
};
