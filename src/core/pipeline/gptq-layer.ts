import type { LinearInputHook } from '../ports';
import { throwIfAborted } from '../errors';
import { gptqQuantize, HessianAccumulator, outputError } from '../quant/gptq';
import type { PlanItem } from '../qwen2/plan';
import { PROJECTION_INFO, projectionName, type LinearInput } from '../qwen2/tensors';
import { decodeToF32, encodeF32 } from '../safetensors/dtype';
import type { CalibrationStream } from './calibration';
import { matrixOutputs } from './outputs';
import { itemBias, itemTransform, loadMatrix, processNormItem } from './process-item';
import { finishQuantized, transformStage, type TransformedMatrix } from './process-tensor';
import { quantizeMatrix, type QuantizedMatrix } from './quantize';
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
 * One decoder layer with sequential GPTQ (Frantar et al.): transform every projection (fuse, rotate
 * — the same function-preserving step as RTN) → run the calibration stream through the transformed
 * layer and accumulate H = 2XᵀX per linear input (q/k/v share one, gate/up share one) → choose each
 * projection's scales exactly as RTN does → GPTQ column updates onto that grid → write → run the
 * stream through the layer as quantized, which gives the next layer its inputs.
 * `items` are the plan indices of the layer's group (norms first).
 */
export async function processLayerWithGptq(ctx: RunContext, stream: CalibrationStream, layer: number, indices: number[]): Promise<void> {
  const { backend, prep, settings } = ctx;
  const { plan } = prep;
  const outDtype = plan.outputDtype;
  const roundToF16 = outDtype === 'F16';
  /** The layer's weights as the forward pass sees them, by HF name: transformed, then quantized. */
  const weights = new Map<string, Float32Array>();
  const matrices: LayerMatrix[] = [];
  /** Matrices whose transformed weights are still on the backend. */
  const live = new Set<LayerMatrix>();
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
      const m: LayerMatrix = { index, item, t, host: decodeToF32(await backend.read(t.w, 'F32'), 'F32'), bias: await itemBias(ctx, item) };
      matrices.push(m);
      live.add(m);
      weights.set(item.name, m.host);
      if (m.bias) weights.set(projectionName(layer, item.proj!, 'bias'), m.bias);
    }

    // 2. Hessians of every linear input (RTN projections get them too: the report's output error).
    const hessians = new Map<LinearInput, HessianAccumulator>();
    for (const m of matrices) {
      const input = PROJECTION_INFO[m.item.proj!].input;
      if (!hessians.has(input)) hessians.set(input, new HessianAccumulator(m.item.cols));
    }
    const hook: LinearInputHook = (input, x, rows) => hessians.get(input)?.addRows(x, rows, `layer ${layer} ${input}`);
    ctx.emit('calibrate', `layer ${layer}: calibration forward and Hessians (${stream.hidden.length} samples, ${stream.tokens} tokens)`);
    for (const h of stream.hidden) {
      throwIfAborted(ctx.signal);
      await stream.forward.runLayer(layer, h, (name) => weights.get(name), hook);
    }
    const H = new Map([...hessians].map(([input, acc]) => [input, acc.hessian()]));

    // 3. Quantize each projection: scales as RTN chooses them, then GPTQ (or RTN) onto that grid.
    for (const m of matrices) {
      throwIfAborted(ctx.signal);
      ctx.at(m.index);
      const { item, t } = m;
      const choice = item.quant;
      let weightBytes: Uint8Array;
      try {
        if (!choice) {
          weightBytes = await backend.read(t.w, outDtype);
          await ctx.outputs.queue(matrixOutputs(item, { weightBytes, report: t.report }, m.bias, ctx.outputs.encode));
        } else {
          ctx.emit('gptq', choice.method === 'gptq' ? `GPTQ ${item.name}` : undefined);
          const rtn = await quantizeMatrix(backend, t.w, t.rowMax, { ...choice, method: 'rtn', codebook: 'uniform' }, roundToF16);
          const h = H.get(PROJECTION_INFO[item.proj!].input)!;
          const rtnValues = decodeToF32(await backend.read(rtn.mat, 'F32'), 'F32');
          let q: QuantizedMatrix = rtn;
          let written = rtnValues;
          if (choice.method === 'gptq') {
            const r = gptqQuantize(m.host, item.rows, item.cols, h, {
              rowStep: rtn.scales.rowStep, rowInv: rtn.scales.rowInv, qmin: rtn.qmin, qmax: rtn.qmax,
              damp: settings.damp, actOrder: settings.actOrder, roundToF16, name: item.name,
            });
            backend.release(rtn.mat);
            const mat = await backend.upload(encodeF32(r.values), 'F32', item.rows, item.cols);
            q = { ...rtn, mat, codeCounts: r.codeCounts };
            written = r.values;
            t.report.gptq = { dampUsed: r.dampUsed, deadColumns: r.deadColumns };
          }
          t.report.calibError = {
            written: outputError(m.host, written, item.rows, item.cols, h).relError,
            rtn: outputError(m.host, rtnValues, item.rows, item.cols, h).relError,
          };
          const result = await finishQuantized(backend, t, q, outDtype);
          weightBytes = result.weightBytes;
          ctx.emit('write');
          await ctx.outputs.queue(matrixOutputs(item, result, m.bias, ctx.outputs.encode));
        }
      } finally {
        backend.release(t.w);
        live.delete(m);
      }
      ctx.report(t.report);
      // What the bundle stores is what the next layer's inputs are computed with.
      weights.set(item.name, decodeToF32(weightBytes, outDtype));
      if (m.bias) weights.set(projectionName(layer, item.proj!, 'bias'), decodeToF32(ctx.outputs.encode(m.bias), outDtype));
    }

    // 4. The stream through the quantized layer: the next layer's inputs.
    ctx.emit('calibrate', `layer ${layer}: calibration forward through the quantized layer`);
    for (let s = 0; s < stream.hidden.length; s++) {
      throwIfAborted(ctx.signal);
      stream.hidden[s] = await stream.forward.runLayer(layer, stream.hidden[s], (name) => weights.get(name));
    }
  } finally {
    for (const m of live) backend.release(m.t.w);
  }
}
