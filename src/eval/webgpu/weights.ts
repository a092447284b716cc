/**
 * A Qwen2 checkpoint's weights on the device, named by core/qwen2/tensors.ts: the embedding, the
 * LM head (its own, or the embedding when tied), the final norm, and per layer the two norms and
 * the seven projections as TiledMatrix with their biases. Over `budgetBytes` only the embedding
 * and head stay resident; each layer is then uploaded into one shared slot just before it runs.
 */
import type { Qwen2Dims } from '../../core/qwen2/config';
import {
  EMBEDDING, FINAL_NORM, LAYER_NORMS, LM_HEAD, PROJECTIONS, layerNormName, layerPrefix, projectionName, projectionShape, type LayerNormName, type ProjName,
} from '../../core/qwen2/tensors';
import { USAGE_STORAGE, type GpuRuntime, type Transients } from '../../gpu/runtime';
import { TiledMatrix } from '../../gpu/tiled';
import type { AsyncWeightSource, RunLayerOptions } from '../forward';
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
  /** No decoder-layer weights of its own: every runLayer brings all of them (withSubstitutes). */
  readonly perCallLayers: boolean;

  private constructor(
    private readonly rt: GpuRuntime,
    private readonly dims: Qwen2Dims,
    private readonly source: AsyncWeightSource,
    private readonly maxBinding: number,
    headBytes: number,
    budget: number,
    perCallLayers: boolean,
  ) {
    this.perCallLayers = perCallLayers;
    let layerBytes = 2 * dims.hidden * 4;
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(dims, p);
      layerBytes += (out * inDim + out) * 4;
    }
    this.layerBytes = layerBytes;
    this.streaming = !perCallLayers && headBytes + dims.layers * layerBytes > budget;
    this.residentBytes = headBytes + (perCallLayers ? 0 : this.streaming ? layerBytes : dims.layers * layerBytes);
  }

  /** Upload what stays resident. Throws GpuUnavailableError on out-of-memory (nothing is left allocated). */
  static async load(
    rt: GpuRuntime, dims: Qwen2Dims, source: AsyncWeightSource, opts: { budgetBytes: number; maxBindingBytes: number; perCallLayers?: boolean },
  ): Promise<Qwen2GpuWeights> {
    const has = async (name: string) => (source.has ? source.has(name) : (await source.get(name)) !== undefined);
    const untied = await has(LM_HEAD);
    const perCall = opts.perCallLayers ?? false;
    const w = new Qwen2GpuWeights(rt, dims, source, opts.maxBindingBytes, dims.vocab * dims.hidden * 4 * (untied ? 2 : 1), opts.budgetBytes, perCall);
    for (let li = 0; li < (perCall ? 0 : dims.layers); li++) {
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
    if (this.perCallLayers) return;
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
    if (this.perCallLayers) throw new Error(`${layerPrefix(li)}: this WebGPU forward pass holds no layer weights (perCallLayers); run it layer by layer with all of a layer's weights in runLayer's options`);
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
   * Layer li's weights with the call's substitutes in place of its own (`ly`; null with
   * perCallLayers, when every projection and norm must be given): a TiledMatrix as it is (shape
   * and tiles checked; a norm or bias as a one-tile [1 × n] matrix), host values uploaded into
   * transient buffers. A bias substitute of null runs without one.
   */
  withSubstitutes(li: number, ly: LayerWeights | null, subs: Omit<RunLayerOptions<never, GpuWeight>, 'hooks'> | undefined, temps: Transients): LayerWeights {
    if (!subs && ly) return ly;
    const mats = { ...ly?.mats } as Record<ProjName, TiledMatrix>;
    const bias = { ...ly?.bias } as Record<ProjName, GPUBuffer | undefined>;
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(this.dims, p);
      const name = `substituted ${projectionName(li, p)}`;
      const sub = subs?.weights?.[p];
      if (sub) mats[p] = this.matrixOf(name, sub, out, inDim, temps);
      else if (!ly) throw new Error(`${projectionName(li, p)}: not given (this pass holds no layer weights of its own)`);
      const b = subs?.biases?.[p];
      if (b === null) bias[p] = undefined;
      else if (b) bias[p] = this.vectorOf(`substituted ${projectionName(li, p, 'bias')}`, b, out, temps);
    }
    const norm = (n: LayerNormName, own: GPUBuffer | undefined): GPUBuffer => {
      const g = subs?.norms?.[n];
      if (g) return this.vectorOf(`substituted ${layerNormName(li, n)}`, g, this.dims.hidden, temps);
      if (!own) throw new Error(`${layerNormName(li, n)}: not given (this pass holds no layer weights of its own)`);
      return own;
    };
    const [inName, postName] = LAYER_NORMS;
    return { inNorm: norm(inName, ly?.inNorm), postNorm: norm(postName, ly?.postNorm), mats, bias };
  }

  private matrixOf(name: string, sub: GpuWeight, rows: number, cols: number, temps: Transients): TiledMatrix {
    if (sub instanceof TiledMatrix) {
      if (sub.tiles.length === 0) throw new Error(`${name}: the matrix was released`);
      if (sub.rows !== rows || sub.cols !== cols) throw new Error(`${name}: ${sub.rows}×${sub.cols}, expected ${rows}×${cols}`);
      for (const t of sub.tiles) {
        if (t.rows * sub.cols * 4 > this.maxBinding) throw new Error(`${name}: a tile of ${t.rows} rows exceeds the binding limit ${this.maxBinding}`);
      }
      return sub;
    }
    if (sub.length !== rows * cols) throw new Error(`${name}: ${sub.length} elements, expected ${rows}×${cols}`);
    const m = TiledMatrix.allocate(rows, cols, this.maxBinding, (bytes, l) => temps.zeroed(l, bytes), name);
    m.write(this.rt, sub);
    return m;
  }

  private vectorOf(name: string, sub: GpuWeight, n: number, temps: Transients): GPUBuffer {
    if (sub instanceof TiledMatrix) {
      if (sub.tiles.length !== 1) throw new Error(`${name}: expected one tile, got ${sub.tiles.length}`);
      if (sub.rows * sub.cols !== n) throw new Error(`${name}: ${sub.rows}×${sub.cols}, expected ${n} values`);
      return sub.tiles[0].buffer;
    }
    if (sub.length !== n) throw new Error(`${name}: ${sub.length} elements, expected ${n}`);
    return temps.filled(name, sub);
  }

  dispose(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.layers.length = 0;
  }
}
