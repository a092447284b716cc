import type { Mat } from '../ports';
import { isDerivedHead, type PlanItem } from '../qwen2/plan';
import { decodeToF32 } from '../safetensors/dtype';
import { matrixOutputs } from './outputs';
import { rotationFor } from './prepare';
import { processMatrix, type ProcessedMatrix } from './process-tensor';
import type { RunContext } from './run-context';
import { normReport } from './tensor-report';
import { transformBias, type MatrixTransform } from './transform';

/** A norm: its γ kept for fusion, written as it is or as ones once fused. */
export async function processNormItem(ctx: RunContext, item: PlanItem): Promise<Float32Array> {
  const { bytes, dtype } = await ctx.reader.read(item.source);
  const g = decodeToF32(bytes, dtype);
  ctx.gammas.set(item.source, g);
  const written = item.writeOnes ? new Float32Array(g.length).fill(1) : g;
  await ctx.outputs.queue([[item.name, ctx.outputs.encode(written)]]);
  ctx.report(normReport(item, g));
  return written;
}

/** The transform a matrix item names, with its fused γ. */
export function itemTransform(ctx: RunContext, item: PlanItem): MatrixTransform {
  let gamma: Float32Array | null = null;
  if (item.fuseNorm) {
    gamma = ctx.gammas.get(item.fuseNorm) ?? null;
    if (!gamma) throw new Error(`plan order: ${item.fuseNorm} is needed before it is read`);
  }
  return { gamma, rowRot: rotationFor(ctx.prep, item.rotateRows, item.cols), colRot: rotationFor(ctx.prep, item.rotateCols, item.rows) };
}

/** Plan item `index`'s source matrix on the backend (a tied head: the embedding's copy); reads the next item ahead. */
export async function loadMatrix(ctx: RunContext, index: number): Promise<Mat> {
  const { items } = ctx.prep.plan;
  const item = items[index];
  let w0: Mat;
  if (isDerivedHead(item)) {
    if (!ctx.embeddingCopy) throw new Error('tied LM head needs the embedding first');
    w0 = ctx.embeddingCopy;
    ctx.embeddingCopy = null;
  } else {
    w0 = await ctx.reader.upload(item);
  }
  const next = items[index + 1];
  ctx.reader.readAhead(next);
  if (item.kind === 'embedding' && next && isDerivedHead(next)) ctx.embeddingCopy = await ctx.backend.clone(w0);
  return w0;
}

/** A projection's bias as written: the source bias transformed (q/k/v), or null. */
export async function itemBias(ctx: RunContext, item: PlanItem): Promise<Float32Array | null> {
  if (!item.biasSource) return null;
  const { bytes, dtype } = await ctx.reader.read(item.biasSource);
  return transformBias(ctx.backend, decodeToF32(bytes, dtype), rotationFor(ctx.prep, item.rotateBias, item.rows));
}

/** A matrix item with round-to-nearest (or no) quantization: load, process, write. */
export async function processMatrixItem(ctx: RunContext, index: number): Promise<ProcessedMatrix> {
  const item = ctx.prep.plan.items[index];
  const w0 = await loadMatrix(ctx, index);
  const result = await processMatrix(ctx.backend, item, w0, itemTransform(ctx, item), ctx.prep.plan.outputDtype, (p) => ctx.emit(p));
  const bias = await itemBias(ctx, item);
  ctx.emit('write');
  await ctx.outputs.queue(matrixOutputs(item, result, bias, ctx.outputs.encode));
  ctx.report(result.report);
  return result;
}
