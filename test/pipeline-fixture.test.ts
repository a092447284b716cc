import { describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { dimsFromConfig } from '../src/eval/qwen2-config';
import { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAVE_FIXTURE, loadWeights, readFolder, relRms, runInMemory, weightSource } from './bundle-helpers';

const ids = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426];

describe.skipIf(!HAVE_FIXTURE)(`tiny real model: function preservation ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, () => {
  it.each(['none', 'block', 'full'] as const)('bits 16 f32, rotation %s: logits equal the original', async (rotation) => {
    const src = readFolder(FIXTURE_DIR);
    const orig = await loadWeights(src);
    const cfg = JSON.parse(new TextDecoder().decode(src['config.json']));
    const ref = createQwen2Cpu(dimsFromConfig(cfg), weightSource(orig)).logits(ids);
    const { files } = await runInMemory(src, { bits: 16, dtype: 'f32', rotation, blockSize: 16 });
    const outCfg = JSON.parse(new TextDecoder().decode(files['config.json']));
    const got = createQwen2Cpu(dimsFromConfig(outCfg), weightSource(await loadWeights(files))).logits(ids);
    expect(relRms(ref, got)).toBeLessThan(1e-5);
  });
});
