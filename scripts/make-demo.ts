/**
 * npm run demo — writes the offline demo models into public/demo/ (gitignored), deterministically:
 *   tiny-random-qwen2/  a small random Qwen2 checkpoint with outlier channels and its own
 *                       byte-level BPE tokenizer (generated here);
 *   tinystories-260k/   a copy of ../shared/fixtures/tinystories-260k when that folder exists
 *                       (a real trained model; copied at build/start time, never committed),
 *                       plus calib.txt / calib.tokens.json: GPTQ calibration stories from the
 *                       second half of its eval text, clear of the evaluated windows;
 *   index.json          the list the app shows.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeByteBpe } from '../src/demo/byte-bpe';
import { demoCalibrationFromEval, type EvalTokens } from '../src/demo/calibration-text';
import { serializeCalibJson } from '../src/eval/calibration-set';
import type { DemoIndex, DemoModel } from '../src/demo/catalog';
import { makeTinyQwen2, mulberry32 } from '../src/demo/tiny-qwen2';
import { writeTinyQwen2 } from '../src/demo/tiny-qwen2-node';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'public', 'demo');
const fixtureDir = path.resolve(root, '..', 'shared', 'fixtures', 'tinystories-260k');

/** Files of the fixture that make a model folder (its README describes the fixture, not a model). */
const FIXTURE_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'LICENSE-model.txt', 'eval.txt', 'eval.tokens.json'];

function listFolder(dir: string): { path: string; size: number }[] {
  return readdirSync(dir)
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => ({ path: f, size: statSync(path.join(dir, f)).size }));
}

function entry(name: string, title: string, description: string, calibration?: string, calibrationTokens?: string): DemoModel {
  const files = listFolder(path.join(outDir, name));
  // Only name evaluation files the folder really has (an older fixture may lack the ids).
  const has = (f?: string): f is string => !!f && files.some((x) => x.path === f);
  return {
    name, title, description, files, bytes: files.reduce((s, f) => s + f.size, 0),
    ...(has(calibration) ? { calibration } : {}),
    ...(has(calibrationTokens) ? { calibrationTokens } : {}),
  };
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const models: DemoModel[] = [];

  // (a) Random model: hidden 256 lets the block-size comparison go from 16 to 256.
  const randomName = 'tiny-random-qwen2';
  const randomDir = path.join(outDir, randomName);
  rmSync(randomDir, { recursive: true, force: true });
  const bpe = makeByteBpe();
  const vocab = Math.ceil(bpe.size / 32) * 32;
  const model = makeTinyQwen2({ hidden: 256, intermediate: 512, layers: 4, heads: 8, kvHeads: 2, vocab, tie: true, seed: 2024, outliers: true });
  model.config.bos_token_id = null;
  model.config.eos_token_id = bpe.eosId;
  await writeTinyQwen2(randomDir, model, { dtype: 'BF16' });
  writeFileSync(path.join(randomDir, 'tokenizer.json'), JSON.stringify(bpe.tokenizerJson, null, 2) + '\n');
  writeFileSync(path.join(randomDir, 'tokenizer_config.json'), JSON.stringify(bpe.tokenizerConfig, null, 2) + '\n');
  // GPTQ calibration for a random model: seeded random ids (its text is meaningless anyway), 64 × 128.
  const randomIds = mulberry32(7);
  const randomCalib = Array.from({ length: 64 }, () => Array.from({ length: 128 }, () => Math.floor(randomIds() * bpe.size)));
  writeFileSync(path.join(randomDir, 'calib.json'), serializeCalibJson(randomCalib));
  models.push({
    ...entry(
      randomName,
      'Tiny random Qwen2 (with outlier channels)',
      'Random weights, d=256, 4 layers, BF16, ~2.3M parameters. A few hidden channels carry LLM-like outliers, so rotation visibly helps. Its text output is gibberish.',
    ),
    quantCalibration: { calibJson: 'calib.json' },
  });

  // (b) The real trained fixture, when this checkout has ../shared.
  const storiesName = 'tinystories-260k';
  const storiesDir = path.join(outDir, storiesName);
  rmSync(storiesDir, { recursive: true, force: true });
  if (existsSync(path.join(fixtureDir, 'model.safetensors'))) {
    mkdirSync(storiesDir, { recursive: true });
    for (const f of FIXTURE_FILES) {
      if (!existsSync(path.join(fixtureDir, f))) continue;
      copyFileSync(path.join(fixtureDir, f), path.join(storiesDir, f));
      // The fixture is read-only; the copy need not be (so the next run can replace it).
      chmodSync(path.join(storiesDir, f), 0o644);
    }
    // GPTQ calibration: the stories of the second half of eval.txt, clear of the 40 × 256 evaluated tokens.
    const evalTokensPath = path.join(storiesDir, 'eval.tokens.json');
    let quantCalibration: DemoModel['quantCalibration'];
    if (existsSync(evalTokensPath)) {
      const calib = demoCalibrationFromEval(readFileSync(path.join(storiesDir, 'eval.txt'), 'utf8'), JSON.parse(readFileSync(evalTokensPath, 'utf8')) as EvalTokens);
      writeFileSync(path.join(storiesDir, 'calib.txt'), calib.text);
      writeFileSync(
        path.join(storiesDir, 'calib.tokens.json'),
        JSON.stringify({ description: `eval.txt stories ${calib.firstStory}… (from eval id ${calib.firstToken}), tokenized like eval.tokens.json`, ids: calib.ids }) + '\n',
      );
      quantCalibration = { text: 'calib.txt', tokens: 'calib.tokens.json' };
    }
    models.push({
      ...entry(
        storiesName,
        'TinyStories 260K (real, trained)',
        "Karpathy's stories260K in Qwen2 layout: d=64, 5 layers, F32, 260K parameters. Writes simple English stories (MIT license).",
        'eval.txt',
        'eval.tokens.json',
      ),
      ...(quantCalibration ? { quantCalibration } : {}),
    });
  }

  const index: DemoIndex = { version: 1, models };
  writeFileSync(path.join(outDir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  process.stdout.write(`demo models in ${path.relative(root, outDir)}: ${models.map((m) => `${m.name} (${(m.bytes / 1e6).toFixed(2)} MB)`).join(', ')}\n`);
}

main().catch((e) => {
  process.stderr.write(`make-demo: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
