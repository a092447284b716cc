import { outputError } from '../quant/gptq';
import { cpuGptqEngine } from '../quant/gptq-engine';
import type { PlanItem } from '../qwen2/plan';
import { decodeToF32 } from '../safetensors/dtype';
import type { TransformedMatrix } from './process-tensor';
import { quantizeMatrix, quantizeWithInputScales, type QuantizedMatrix } from './quantize';
import type { RunContext } from './run-context';

/**
 * A projection of a GPTQ layer with fitted per-input-column scales (choice.inputScales 'fitted'):
 * the scales fitted with its input's Hessian diagonal, then RTN or GPTQ (H' = diag(s) H diag(s))
 * on W·diag(1/s). Fills the report's calibration error (of what is written and of plain RTN with
 * uniform scales, the comparison every GPTQ report gives) and GPTQ details; the caller writes it.
 */
export async function quantizeFittedInLayer(ctx: RunContext, item: PlanItem, t: TransformedMatrix, host: Float32Array, h: Float64Array): Promise<QuantizedMatrix> {
  const { backend, settings } = ctx;
  const choice = item.quant!;
  const roundToF16 = ctx.prep.plan.outputDtype === 'F16';
  const rtn = await quantizeMatrix(backend, t.w, t.rowMax, { ...choice, method: 'rtn', codebook: 'uniform', inputScales: 'uniform' }, roundToF16);
  let rtnValues: Float32Array;
  try {
    rtnValues = decodeToF32(await backend.read(rtn.mat, 'F32'), 'F32');
  } finally {
    backend.release(rtn.mat);
  }
  if (choice.method === 'gptq') ctx.emit('gptq', `GPTQ ${item.name} (fitted input scales)`);
  const q = await quantizeWithInputScales(backend, host, item.rows, item.cols, choice, roundToF16, {
    name: item.name, hessian: h, gptq: { engine: backend.gptq ?? cpuGptqEngine, damp: settings.damp, actOrder: settings.actOrder },
  });
  if (q.gptq) t.report.gptq = q.gptq;
  t.report.calibError = {
    written: outputError(host, q.values, item.rows, item.cols, h).relError,
    rtn: outputError(host, rtnValues, item.rows, item.cols, h).relError,
  };
  return q;
}
