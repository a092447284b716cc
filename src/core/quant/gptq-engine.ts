/**
 * The CPU GptqEngine (src/core/ports.ts): HessianAccumulator and gptqQuantize on the host, in
 * f64 — the fallback of every backend and the oracle of the GPU engines.
 */
import type { GptqEngine, HessianAccumulation, LinearInputRows } from '../ports';
import { gptqQuantize, HessianAccumulator } from './gptq';

class CpuHessian implements HessianAccumulation {
  private readonly acc: HessianAccumulator;
  constructor(readonly dim: number, private readonly name?: string) {
    this.acc = new HessianAccumulator(dim);
  }

  get samples(): number {
    return this.acc.samples;
  }

  async add(x: LinearInputRows): Promise<void> {
    if (x.cols !== this.dim) throw new RangeError(`Hessian${this.name ? ` of ${this.name}` : ''}: rows of ${x.cols} values, expected ${this.dim}`);
    const data = x.host ?? (await x.read());
    this.acc.addRows(data, x.rows, this.name);
  }

  async hessian(): Promise<Float64Array> {
    return this.acc.hessian();
  }

  dispose(): void {
    // host memory only: the garbage collector has it
  }
}

export const cpuGptqEngine: GptqEngine = {
  description: 'CPU (TypeScript, f64)',
  hessian: (dim, name) => new CpuHessian(dim, name),
  quantize: async (w, rows, cols, h, opts) => gptqQuantize(w, rows, cols, h, opts),
};
