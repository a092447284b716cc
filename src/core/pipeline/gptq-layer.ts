import { throwIfAborted } from '../errors';
import { outputError } from '../quant/gptq';
import { cpuGptqEngine } from '../quant/gptq-engine';
import type { PlanItem } from '../qwen2/plan';
import { LINEAR_INPUTS, PROJECTION_INFO, projectionName } from '../qwen2/tensors';
import { decodeToF32, encodeF32 } from '../safetensors/dtype';
import type { CalibrationStream } from './calibration';
import { quantizeFittedInLayer } from './fitted-layer';
import { matrixOutputs } from './outputs';
import { itemBias, itemTransform, loadMatrix, processNormItem } from './process-item';
import { finishQuantized, transformStage, type TransformedMatrix } from './process-tensor';
import { learnCodebook, quantizeMatrix, type QuantizedMatrix } from './quantize';
import type { RunContext } from './run-context';

interface LayerMatrix {
  index: number;
  item: PlanItem;
  t: TransformedMatrix;
  /** The transformed f32 weights on the host (what GPTQ updates). */
  host: Float32Array;
  bias: Float32Array | null;
}

/**
 * One decoder layer with sequential GPTQ (Frantar et al.):
 *  1. transform every projection (fuse, rotate — the same function-preserving step as RTN);
 *  2. for each linear input in forward order (attn_in → attn_out → mlp_in → mlp_mid), run the
 *     calibration stream through the layer with the projections already done in their quantized
 *     form ("true sequential": o_proj's Hessian sees the quantized q/k/v it will meet), accumulate
 *     H = 2XᵀX of that input (q/k/v share one, gate/up share one), and quantize the projections
 *     that read it: scales chosen exactly as RTN chooses them, then GPTQ onto that grid;
 *  3. run the stream through the quantized layer: the next layer's inputs.
 * `indices` are the plan indices of the layer's group (norms first).
 */
export async function processLayerWithGptq(ctx: RunContext, stream: CalibrationStream, layer: number, indices: number[]): Promise<void> {
  const { backend, prep } = ctx;
  const { plan } = prep;
  const outDtype = plan.outputDtype;
  /** The layer's weights as the forward pass sees them, by HF name: transformed, then as stored. */
  const weights = new Map<string, Float32Array>();
  const matrices: LayerMatrix[] = [];
  /** Matrices whose transformed weights are still on the backend. */
  const live = new Set<LayerMatrix>();
  const runStream = async (onInput?: Parameters<CalibrationStream['forward']['runLayer']>[3], replace = false): Promise<void> => {
    for (let s = 0; s < stream.hidden.length; s++) {
      throwIfAborted(ctx.signal);
      const out = await stream.forward.runLayer(layer, stream.hidden[s], (name) => weights.get(name), onInput);
      if (replace) stream.hidden[s] = out;
    }
  };
  try {
    // 1. Transform: norms (kept for fusion; written as they are or as ones) and all projections.
    for (const index of indices) {
      ctx.at(index);
      const item = plan.items[index];
      ctx.emit('read');
      if (item.kind === 'norm') {
        weights.set(item.name, await processNormItem(ctx, item));
        continue;
      }
      const w0 = await loadMatrix(ctx, index);
      const t = await transformStage(backend, item, w0, itemTransform(ctx, item), outDtype, (p) => ctx.emit(p));
      const m: LayerMatrix = { index, item, t, host: decodeToF32(await backend.read(t.w, 'F32'), 'F32'), bias: null };
      live.add(m);
      m.bias = await itemBias(ctx, item);
      matrices.push(m);
      weights.set(item.name, m.host);
      if (m.bias) weights.set(projectionName(layer, item.proj!, 'bias'), m.bias);
    }

    // 2. One linear input at a time, in forward order.
    for (const input of LINEAR_INPUTS) {
      const group = matrices.filter((m) => PROJECTION_INFO[m.item.proj!].input === input);
      if (group.length === 0) continue;
      ctx.at(group[0].index);
      // The W8 budget's measuring pass quantizes with plain RTN: no Hessian needed (its reports carry no calibError).
      const h = ctx.sensitivity && group.every((m) => !needsHessian(m.item)) ? null : await layerInputHessian(ctx, stream, runStream, layer, input, group[0].item.cols);
      for (const m of group) {
        throwIfAborted(ctx.signal);
        ctx.at(m.index);
        try {
          await quantizeWithHessian(ctx, m, h, weights);
        } finally {
          backend.release(m.t.w);
          live.delete(m);
        }
      }
    }

    // The W8 budget's measuring pass: each projection's effect on this layer's output.
    if (ctx.sensitivity) await measureLayerSensitivity(ctx, stream, layer, matrices, weights);

    // 3. The stream through the quantized layer: the next layer's inputs.
    ctx.emit('calibrate', `layer ${layer}: calibration forward through the quantized layer`);
    await runStream(undefined, true);
  } finally {
    for (const m of live) backend.release(m.t.w);
  }
}

/** Whether quantizing the item uses its input's Hessian (GPTQ, a learned codebook's column weights, or fitted input scales' importance). */
function needsHessian(item: PlanItem): boolean {
  return !!item.quant && (item.quant.method === 'gptq' || item.quant.codebook === 'learned' || item.quant.inputScales === 'fitted');
}

/** H = 2XᵀX of one linear input of the layer, from a calibration forward through it. */
async function layerInputHessian(
  ctx: RunContext, stream: CalibrationStream, runStream: (onInput: Parameters<CalibrationStream['forward']['runLayer']>[3]) => Promise<void>,
  layer: number, input: (typeof LINEAR_INPUTS)[number], cols: number,
): Promise<Float64Array> {
  const acc = (ctx.backend.gptq ?? cpuGptqEngine).hessian(cols, `layer ${layer} ${input}`);
  ctx.emit('calibrate', `layer ${layer} ${input}: calibration forward and Hessian (${stream.hidden.length} samples, ${stream.tokens} tokens)`);
  try {
    await runStream((at, x) => (at === input ? acc.add(x) : undefined));
    return await acc.hessian();
  } finally {
    acc.dispose();
  }
}

/**
 * A projection quantized with its input's Hessian: RTN's scales, then GPTQ (when its choice says
 * so) onto that grid; written, reported (with the output error on calibration data of what was
 * written and of RTN), and installed in `weights` as stored for the rest of the layer's passes.
 * Without a Hessian (the W8 measuring pass, plain RTN only) there is no output error to report.
 */
async function quantizeWithHessian(ctx: RunContext, m: LayerMatrix, h: Float64Array | null, weights: Map<string, Float32Array>): Promise<void> {
  const { backend, settings } = ctx;
  const outDtype = ctx.prep.plan.outputDtype;
  const roundToF16 = outDtype === 'F16';
  const { item, t } = m;
  const layer = item.layer!;
  const choice = item.quant;
  let weightBytes: Uint8Array;
  if (!choice) {
    weightBytes = await backend.read(t.w, outDtype);
    await ctx.outputs.queue(matrixOutputs(item, { weightBytes, report: t.report }, m.bias, ctx.outputs.encode));
  } else if (choice.inputScales === 'fitted') {
    if (!h) throw new Error(`${item.name}: fitted input scales in a calibrated layer need its input's Hessian`);
    const result = await finishQuantized(backend, t, await quantizeFittedInLayer(ctx, item, t, m.host, h), outDtype);
    weightBytes = result.weightBytes;
    ctx.emit('write');
    await ctx.outputs.queue(matrixOutputs(item, result, m.bias, ctx.outputs.encode));
  } else {
    // RTN onto the grid: the comparison the report gives (and what an RTN item writes).
    const rtn = await quantizeMatrix(backend, t.w, t.rowMax, { ...choice, method: 'rtn', codebook: 'uniform' }, roundToF16);
    let q: QuantizedMatrix = rtn;
    const rtnValues = decodeToF32(await backend.read(rtn.mat, 'F32'), 'F32');
    let written = rtnValues;
    // A learned codebook is fitted to this tensor with its input's Hessian diagonal as column weights.
    if (!h && needsHessian(item)) throw new Error(`${item.name}: ${choice.method} with a ${choice.codebook} codebook needs its input's Hessian`);
    const diagH = h && choice.codebook === 'learned' ? Float64Array.from({ length: item.cols }, (_, j) => h[j * item.cols + j]) : undefined;
    // Fitted on the host copy the layer already holds (no second readback).
    const codebook = diagH ? learnCodebook(m.host, item.rows, item.cols, rtn.scales, choice.bits, diagH, item.name) : rtn.codebook;
    if (choice.method === 'gptq') {
      ctx.emit('gptq', `GPTQ ${item.name}`);
      const r = await (backend.gptq ?? cpuGptqEngine).quantize(m.host, item.rows, item.cols, h!, {
        rowStep: rtn.scales.rowStep, rowInv: rtn.scales.rowInv, qmin: rtn.qmin, qmax: rtn.qmax,
        damp: settings.damp, actOrder: settings.actOrder, roundToF16, name: item.name,
        ...(diagH ? { codebook } : {}),
      });
      backend.release(rtn.mat);
      q = { ...rtn, mat: await backend.upload(encodeF32(r.values), 'F32', item.rows, item.cols), codeCounts: r.codeCounts, codebook };
      written = r.values;
      t.report.gptq = { dampUsed: r.dampUsed, deadColumns: r.deadColumns };
    } else if (diagH) {
      backend.release(rtn.mat);
      const c = await backend.quantizeToCodebook(t.w, rtn.scales.rowStep, rtn.scales.rowInv, codebook, roundToF16);
      q = { ...rtn, mat: c.mat, codeCounts: c.codeCounts, codebook };
      written = decodeToF32(await backend.read(c.mat, 'F32'), 'F32');
    }
    if (h) {
      t.report.calibError = {
        written: outputError(m.host, written, item.rows, item.cols, h).relError,
        rtn: outputError(m.host, rtnValues, item.rows, item.cols, h).relError,
      };
    }
    const result = await finishQuantized(backend, t, q, outDtype);
    weightBytes = result.weightBytes;
    ctx.emit('write');
    await ctx.outputs.queue(matrixOutputs(item, result, m.bias, ctx.outputs.encode));
  }
  ctx.report(t.report);
  // What the bundle stores is what the rest of the layer, and the next layer's inputs, are computed with.
  weights.set(item.name, decodeToF32(weightBytes, outDtype));
  if (m.bias) weights.set(projectionName(layer, item.proj!, 'bias'), decodeToF32(ctx.outputs.encode(m.bias), outDtype));
}

/**
 * Layer-output sensitivity of each quantized projection (the W8 budget's ranking): the layer with
 * that projection alone as quantized (`weights` holds it as stored) and every other one at full
 * precision, on the calibration stream (its inputs come from the earlier layers as this run
 * quantized them), against the unquantized layer on the same inputs:
 * Σ‖y − y_ref‖² / Σ‖y_ref‖² over the layer's output residual stream, all samples. One reference
 * pass and one pass per projection (8 layer forwards for a Qwen2 layer); each pass runs every
 * sample with the same weights, so a device forward uploads the swapped projection once.
 * The ratio shares its denominator within a layer; across layers it compares relative damage to
 * the residual stream, which is what the next layer (and the head) sees.
 */
async function measureLayerSensitivity(
  ctx: RunContext, stream: CalibrationStream, layer: number, matrices: readonly LayerMatrix[], weights: ReadonlyMap<string, Float32Array>,
): Promise<void> {
  const report = ctx.sensitivity;
  const candidates = matrices.filter((m) => m.item.quant);
  if (!report || candidates.length === 0) return;
  // The unquantized layer: transformed f32 weights and biases (norms as the layer uses them).
  const fp = new Map(weights);
  for (const m of matrices) {
    fp.set(m.item.name, m.host);
    if (m.bias) fp.set(projectionName(layer, m.item.proj!, 'bias'), m.bias);
  }
  ctx.at(candidates[0].index);
  ctx.emit('calibrate', `layer ${layer}: sensitivity of each projection to 4-bit rounding (${candidates.length + 1} calibration forwards)`);
  const ref: Float32Array[] = [];
  let refEnergy = 0;
  for (const h of stream.hidden) {
    throwIfAborted(ctx.signal);
    const y = await stream.forward.runLayer(layer, h, (name) => fp.get(name));
    for (let i = 0; i < y.length; i++) refEnergy += y[i] * y[i];
    ref.push(y);
  }
  for (const m of candidates) {
    const name = m.item.name;
    const q = weights.get(name);
    if (!q) throw new Error(`layer ${layer}: ${name} has no quantized weights to measure`);
    const lookup = (n: string): Float32Array | undefined => (n === name ? q : fp.get(n));
    let err = 0;
    for (let s = 0; s < stream.hidden.length; s++) {
      throwIfAborted(ctx.signal);
      const y = await stream.forward.runLayer(layer, stream.hidden[s], lookup);
      const r = ref[s];
      for (let i = 0; i < y.length; i++) {
        const d = y[i] - r[i];
        err += d * d;
      }
    }
    report({ name, params: m.item.rows * m.item.cols, sensitivity: refEnergy > 0 ? err / refEnergy : 0 });
  }
}
