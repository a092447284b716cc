import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite, fixtureJson } from '../../test/support/fixture';
import { loadSafetensorsWeights, makeTinyQwen2, tinyWeights } from '../../test/support/tiny-qwen2';
import { createQwen2Cpu } from './forward-cpu';
import type { GenerativeModel, LogitsModel } from './forward';
import { argmax, evaluate, greedy, windows } from './perplexity';
import { dimsFromConfig } from '../core/qwen2/config';

/** A stateless toy model: the logits at each position are a fixed function of that position's id. */
function tableModel(V: number, row: (id: number) => number[]): LogitsModel & GenerativeModel {
  const one = (id: number) => Float32Array.from(row(id));
  return {
    vocab: V,
    async logits(ids: number[]) {
      const out = new Float32Array(ids.length * V);
      ids.forEach((id, t) => out.set(one(id), t * V));
      return out;
    },
    prefill: async (ids: number[]) => one(ids[ids.length - 1]),
    step: async (id: number) => one(id),
  };
}

describe('windows', () => {
  it('cuts non-overlapping windows and drops the tail', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => i);
    expect(windows(ids, 3)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
    ]);
    expect(windows(ids, 3, 2)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(windows(ids, 11)).toEqual([]);
    expect(windows(ids, 5, 0)).toEqual([]);
    expect(() => windows(ids, 1)).toThrow(/seqlen/);
  });

  it('gives the fixture 229 windows of 256', async () => {
    expect(windows(new Array(58737).fill(0), 256).length).toBe(229);
  });
});

describe('evaluate on toy models', () => {
  const V = 4;
  const uniform = tableModel(V, () => [0, 0, 0, 0]);
  // Predicts "id + 1 mod 4" with logit 2 over 0: p = e²/(e²+3).
  const next = tableModel(V, (id) => [0, 1, 2, 3].map((j) => (j === (id + 1) % V ? 2 : 0)));
  const ids = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2];

  it('uniform logits give ppl = V', async () => {
    const r = await evaluate(uniform, undefined, ids, 5, undefined);
    expect(r.windows).toBe(2);
    expect(r.predictions).toBe(8);
    expect(r.pplA).toBeCloseTo(4, 12);
    expect(r.windowNllA).toEqual([Math.log(4), Math.log(4)].map((x) => expect.closeTo(x, 12)));
    expect(r.pplB).toBeUndefined();
  });

  it('ppl, KL(A‖B) and top-1 agreement against hand-computed values', async () => {
    const p = Math.exp(2) / (Math.exp(2) + 3);
    const r = await evaluate(next, uniform, ids, 5, 1);
    expect(r.windows).toBe(1);
    expect(r.predictions).toBe(4);
    expect(r.pplA).toBeCloseTo(1 / p, 10); // every target is the predicted one
    expect(r.pplB).toBeCloseTo(4, 10);
    // KL(A‖uniform) = Σ p log(4p) = log 4 − H(A)
    const q = 1 / (Math.exp(2) + 3);
    const kl = p * Math.log(4 * p) + 3 * q * Math.log(4 * q);
    expect(r.klMean).toBeCloseTo(kl, 12);
    // argmax of uniform is 0 (first index); A's argmax is id+1: windows [0,1,2,3] → A says 1,2,3,0.
    expect(r.top1Agreement).toBeCloseTo(1 / 4, 12);
    const same = await evaluate(next, next, ids, 5, 2);
    expect(same.klMean).toBe(0);
    expect(same.top1Agreement).toBe(1);
    expect(same.pplB).toBe(same.pplA);
  });

  it('reports progress per window and refuses too little text', async () => {
    const seen: string[] = [];
    await evaluate(uniform, undefined, ids, 3, undefined, { onWindow: (d, t) => seen.push(`${d}/${t}`) });
    expect(seen).toEqual(['1/3', '2/3', '3/3']);
    await expect(evaluate(uniform, undefined, [1, 2], 3, undefined)).rejects.toThrow(/at least 3 tokens/);
  });
});

describe('greedy', () => {
  const V = 5;
  const next = tableModel(V, (id) => [0, 1, 2, 3, 4].map((j) => (j === (id + 1) % V ? 1 : 0)));

  it('follows the argmax, stops at n or at an EOS id (included)', async () => {
    expect(await greedy(next, [0], 6)).toEqual([1, 2, 3, 4, 0, 1]);
    expect(await greedy(next, [2, 0], 6, [3])).toEqual([1, 2, 3]);
    expect(await greedy(next, [0], 0)).toEqual([]);
    expect(argmax([1, 3, 3, 2])).toBe(1);
  });

  it('on a tiny Qwen2 equals argmax of repeated full forwards', async () => {
    const tiny = makeTinyQwen2({ hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, vocab: 50, tie: true, seed: 11 });
    const model = createQwen2Cpu(dimsFromConfig(tiny.config), tinyWeights(tiny));
    const seq = [7, 3];
    for (let i = 0; i < 12; i++) {
      const z = await model.logits(seq);
      seq.push(argmax(z.subarray((seq.length - 1) * 50)));
    }
    expect([7, 3, ...await greedy(model, [7, 3], 12)]).toEqual(seq);
  });
});

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('perplexity on tinystories-260k'), () => {
  let model: LogitsModel;
  let ids: number[];
  beforeAll(async () => {
    model = createQwen2Cpu(dimsFromConfig(fixtureJson('config.json')), await loadSafetensorsWeights(FIXTURE_DIR));
    ids = fixtureJson<{ ids: number[] }>('eval.tokens.json').ids;
  });

  it('all 229 windows of 256: ppl 3.58846 (±0.1 %), window-0 NLL 1.284037 (±1e-4)', async () => {
    const t0 = performance.now();
    const r = await evaluate(model, undefined, ids, 256, undefined);
    const ms = performance.now() - t0;
    console.log(`fixture eval: ppl ${r.pplA.toFixed(5)} over ${r.windows} windows in ${(ms / 1000).toFixed(1)} s`);
    expect(r.windows).toBe(229);
    expect(r.predictions).toBe(58395);
    expect(Math.abs(r.pplA / 3.58846 - 1)).toBeLessThan(1e-3);
    expect(Math.abs(r.windowNllA[0] - 1.284037)).toBeLessThan(1e-4);
  });

  it('the model against itself: KL 0, agreement 1 (first 2 windows)', async () => {
    const r = await evaluate(model, model, ids, 256, 2);
    expect(r.klMean).toBe(0);
    expect(r.top1Agreement).toBe(1);
    expect(r.pplB).toBe(r.pplA);
    expect(r.predictions).toBe(510);
  });
});
