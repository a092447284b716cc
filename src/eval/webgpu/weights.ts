/**
 * A Qwen2 checkpoint's weights on the device, named by core/qwen2/tensors.ts: the embedding, the
 * LM head (its own, or the embedding when tied), the final norm, and per layer the two norms and
 * the seven projections as TiledMatrix with their biases. Over `budgetBytes` only the embedding
 * and head stay resident; each layer is then uploaded into one shared slot just before it runs.
 */
import type { Qwen2Dims } from '../../core/qwen2/config';
import { EMBEDDING, FINAL_NORM, LM_HEAD, PROJECTIONS, layerNormName, layerPrefix, projectionName, projectionShape, type ProjName } from '../../core/qwen2/tensors';
import { USAGE_STORAGE, type GpuRuntime, type Transients } from '../../gpu/runtime';
import { TiledMatrix } from '../../gpu/tiled';
import type { AsyncWeightSource } from '../forward';
import type { CommandStream } from './kernels';

/** A weight a layer may run with instead of its own: host values, or a device matrix (e.g. WebGpuBackend.tiledMatrixOf). */
export type GpuWeight = Float32Array | TiledMatrix;

export interface LayerWeights {
  inNorm: GPUBuffer;
  postNorm: GPUBuffer;
  mats: Record<ProjName, TiledMatrix>;
  /** The projection's bias, or undefined when the checkpoint has none. */
  bias: Record<ProjName, GPUBuffer | undefined>;
}

export class Qwen2GpuWeights {
  private readonly owned = new Set<GPUBuffer>();
  private readonly layers: LayerWeights[] = [];
  /** Per layer, which projections have a bias (a streamed slot is shared, so flags travel separately). */
  private readonly biasFlags: Record<ProjName, boolean>[] = [];
  embedding!: TiledMatrix;
  head!: TiledMatrix;
  finalNorm!: GPUBuffer;
  readonly streaming: boolean;
  /** Bytes of weights kept on the device. */
  readonly residentBytes: number;
  private readonly layerBytes: number;

  private constructor(
    private readonly rt: GpuRuntime,
    private readonly dims: Qwen2Dims,
    private readonly source: AsyncWeightSource,
    private readonly maxBinding: number,
    headBytes: number,
    budget: number,
  ) {
    let layerBytes = 2 * dims.hidden * 4;
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(dims, p);
      layerBytes += (out * inDim + out) * 4;
    }
    this.layerBytes = layerBytes;
    this.streaming = headBytes + dims.layers * layerBytes > budget;
    this.residentBytes = headBytes + (this.streaming ? layerBytes : dims.layers * layerBytes);
  }

  /** Upload what stays resident. Throws GpuUnavailableError on out-of-memory (nothing is left allocated). */
  static async load(rt: GpuRuntime, dims: Qwen2Dims, source: AsyncWeightSource, opts: { budgetBytes: number; maxBindingBytes: number }): Promise<Qwen2GpuWeights> {
    const has = async (name: string) => (source.has ? source.has(name) : (await source.get(name)) !== undefined);
    const untied = await has(LM_HEAD);
    const w = new Qwen2GpuWeights(rt, dims, source, opts.maxBindingBytes, dims.vocab * dims.hidden * 4 * (untied ? 2 : 1), opts.budgetBytes);
    for (let li = 0; li < dims.layers; li++) {
      const flags = {} as Record<ProjName, boolean>;
      for (const p of PROJECTIONS) flags[p] = await has(projectionName(li, p, 'bias'));
      w.biasFlags.push(flags);
    }
    try {
      await rt.scoped('uploading the weights', () => w.upload(untied));
    } catch (e) {
      w.dispose();
      throw e;
    }
    return w;
  }

  private buffer(label: string, bytes: number): GPUBuffer {
    const b = this.rt.createBuffer(label, bytes, USAGE_STORAGE);
    this.owned.add(b);
    return b;
  }

  private matrix(rows: number, cols: number, label: string): TiledMatrix {
    return TiledMatrix.allocate(rows, cols, this.maxBinding, (bytes, l) => this.buffer(l, bytes), label);
  }

  private async tensor(name: string, size: number, optional = false): Promise<Float32Array | undefined> {
    const t = await this.source.get(name);
    if (!t) {
      if (optional) return undefined;
      throw new Error(`missing tensor ${name}`);
    }
    if (t.length !== size) throw new Error(`tensor ${name}: ${t.length} elements, expected ${size}`);
    return t;
  }

  private async upload(untied: boolean): Promise<void> {
    const { vocab: V, hidden: d, layers: L } = this.dims;
    this.embedding = this.matrix(V, d, EMBEDDING);
    this.embedding.write(this.rt, (await this.tensor(EMBEDDING, V * d))!);
    this.head = this.embedding;
    if (untied) {
      this.head = this.matrix(V, d, LM_HEAD);
      this.head.write(this.rt, (await this.tensor(LM_HEAD, V * d))!);
    }
    this.finalNorm = this.buffer(FINAL_NORM, d * 4);
    this.rt.writeF32(this.finalNorm, (await this.tensor(FINAL_NORM, d))!);
    if (this.streaming) {
      this.layers.push(this.allocLayer('streamed layer'));
      return;
    }
    for (let li = 0; li < L; li++) {
      const ly = this.allocLayer(layerPrefix(li));
      await this.uploadLayer(li, ly);
      this.layers.push(ly);
    }
  }

  private allocLayer(label: string): LayerWeights {
    const d = this.dims.hidden;
    const mats = {} as Record<ProjName, TiledMatrix>;
    const bias = {} as Record<ProjName, GPUBuffer>;
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(this.dims, p);
      mats[p] = this.matrix(out, inDim, `${label}.${p}`);
      bias[p] = this.buffer(`${label}.${p}.bias`, out * 4);
    }
    return { inNorm: this.buffer(`${label}.input_layernorm`, d * 4), postNorm: this.buffer(`${label}.post_attention_layernorm`, d * 4), mats, bias };
  }

  private async uploadLayer(li: number, target: LayerWeights): Promise<void> {
    const d = this.dims.hidden;
    this.rt.writeF32(target.inNorm, (await this.tensor(layerNormName(li, 'input_layernorm'), d))!);
    this.rt.writeF32(target.postNorm, (await this.tensor(layerNormName(li, 'post_attention_layernorm'), d))!);
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(this.dims, p);
      target.mats[p].write(this.rt, (await this.tensor(projectionName(li, p), out * inDim))!);
      const b = await this.tensor(projectionName(li, p, 'bias'), out, true);
      if (b) this.rt.writeF32(target.bias[p]!, b);
    }
  }

  /**
   * Layer li's weights; streamed, it is uploaded into the slot first (after flushing `stream`, so
   * queue order lands the upload after the previous layer's commands).
   */
  async layer(li: number, stream: CommandStream): Promise<LayerWeights> {
    let ly = this.layers[li];
    if (this.streaming) {
      stream.flush();
      ly = this.layers[0];
      await this.uploadLayer(li, ly);
    }
    const flags = this.biasFlags[li];
    const bias = {} as Record<ProjName, GPUBuffer | undefined>;
    for (const p of PROJECTIONS) bias[p] = flags[p] ? ly.bias[p] : undefined;
    return { ...ly, bias };
  }

  /**
   * Layer li's weights with `subs` in place of its projections: a TiledMatrix as it is (shape and
   * tiles checked), host values uploaded into transient tiles.
   */
  withSubstitutes(li: number, ly: LayerWeights, subs: Partial<Record<ProjName, GpuWeight>> | undefined, temps: Transients): LayerWeights {
    if (!subs) return ly;
    const mats = { ...ly.mats };
    for (const p of PROJECTIONS) {
      const sub = subs[p];
      if (!sub) continue;
      const own = ly.mats[p];
      const name = `substituted ${projectionName(li, p)}`;
      if (sub instanceof TiledMatrix) {
        if (sub.tiles.length === 0) throw new Error(`${name}: the matrix was released`);
        if (sub.rows !== own.rows || sub.cols !== own.cols) throw new Error(`${name}: ${sub.rows}×${sub.cols}, expected ${own.rows}×${own.cols}`);
        for (const t of sub.tiles) {
          if (t.rows * sub.cols * 4 > this.maxBinding) throw new Error(`${name}: a tile of ${t.rows} rows exceeds the binding limit ${this.maxBinding}`);
        }
        mats[p] = sub;
      } else {
        if (sub.length !== own.rows * own.cols) throw new Error(`${name}: ${sub.length} elements, expected ${own.rows}×${own.cols}`);
        const m = TiledMatrix.allocate(own.rows, own.cols, this.maxBinding, (bytes, l) => temps.zeroed(l, bytes), name);
        m.write(this.rt, sub);
        mats[p] = m;
      }
    }
    return { ...ly, mats };
  }

  dispose(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.layers.length = 0;
  }
}
