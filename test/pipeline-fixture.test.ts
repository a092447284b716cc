import { describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAVE_FIXTURE, loadWeights, readFolder, relRms, runInMemory, weightSource } from './support/bundle';

const ids = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426];

describe.skipIf(!HAVE_FIXTURE)(`tiny real model: function preservation ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, () => {
  it.each(['none', 'block', 'full'] as const)('bits 16 f32, rotation %s: logits equal the original', async (rotation) => {
    const src = readFolder(FIXTURE_DIR);
    const orig = await loadWeights(src);
    const cfg = JSON.parse(new TextDecoder().decode(src['config.json']));
    const ref = await createQwen2Cpu(dimsFromConfig(cfg), weightSource(orig)).logits(ids);
    const { files } = await runInMemory(src, { bits: 16, dtype: 'f32', rotation, blockSize: 16 });
    const outCfg = JSON.parse(new TextDecoder().decode(files['config.json']));
    const got = await createQwen2Cpu(dimsFromConfig(outCfg), weightSource(await loadWeights(files))).logits(ids);
    console.log(`fixture bits 16 f32 rotation ${rotation}: logits relative RMS ${relRms(ref, got).toExponential(2)}`);
    expect(relRms(ref, got)).toBeLessThan(1e-5);
  });
});

describe.skipIf(!HAVE_FIXTURE)(`tiny real model: perplexity (SPEC §7, 256-token windows) ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, () => {
  it('bits-16 bundle within 1 % of the README FP figure; W4 defaults ≈ SPEC §3, plain RTN reported', async () => {
    const { readFileSync } = await import('node:fs');
    const { evaluate } = await import('../src/eval/perplexity');
    const tokens: number[] = JSON.parse(readFileSync(`${FIXTURE_DIR}/eval.tokens.json`, 'utf8')).ids;
    const src = readFolder(FIXTURE_DIR);
    const load = async (files: Record<string, Uint8Array>) =>
      createQwen2Cpu(dimsFromConfig(JSON.parse(new TextDecoder().decode(files['config.json']))), weightSource(await loadWeights(files)));
    const fp = await load(src);

    const b16 = await runInMemory(src, { bits: 16 });
    const all = await evaluate(await load(b16.files), undefined, tokens, 256);
    expect(all.windows).toBe(229);
    console.log(`fixture bits-16 bundle, all 229 windows: ppl ${all.pplA.toFixed(4)} (README FP 3.5885)`);
    expect(Math.abs(all.pplA / 3.5885 - 1)).toBeLessThan(0.01);

    const w4 = await runInMemory(src, {});
    const plain = await runInMemory(src, { rotation: 'none' });
    const r = await evaluate(fp, await load(w4.files), tokens, 256, 40);
    const rp = await evaluate(fp, await load(plain.files), tokens, 256, 40);
    console.log(`fixture, first 40 windows: FP ${r.pplA.toFixed(3)}; W4 sp/mse full ${r.pplB!.toFixed(3)} (KL ${r.klMean!.toFixed(4)}); plain RTN ${rp.pplB!.toFixed(3)} (KL ${rp.klMean!.toFixed(4)})`);
    expect(r.pplA).toBeCloseTo(3.570, 2);
    expect(r.pplB!).toBeLessThan(4.15); // SPEC §3: ≈ 4.12 for sp/mse full
    expect(rp.pplB!).toBeLessThan(4.15); // SPEC §3: ≈ 4.04 plain; on this outlier-free model plain RTN is about as good
  }, 600_000); // 229 + 2×40 windows of the CPU forward: over two minutes on a loaded 2-core machine
});
