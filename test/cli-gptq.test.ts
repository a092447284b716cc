/**
 * The quantize CLI with calibration (a real child process): --calib turns GPTQ on, the
 * calibration set is built and checked before any weight is read, the run prints its cost and
 * per-layer GPTQ progress, and the summary and --report give the output error of GPTQ vs RTN.
 * Bad calibration input → exit 2, a specific message, nothing written.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { calibIdsSha256, readCalibrationModelInfo, sampleCalibration, serializeCalibJson } from '../src/eval/calibration-set';
import { joinWikiText, WIKITEXT2_RAW, wikitextParquetPath } from '../src/eval/wikitext';
import { createNodeFsSource } from '../src/sources/node-fs-source-node';
import { startMockHub } from './support/mock-hub';
import { parquetStringColumn } from './support/parquet-bytes';
import { mulberry32 } from '../src/demo/tiny-qwen2';
import { makeTinyQwen2, writeTinyQwen2 } from './support/tiny-qwen2';
import { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAVE_FIXTURE } from './support/bundle';
import { runCli } from './support/cli';

const tmp = mkdtempSync(join(tmpdir(), 'quarot-cli-gptq-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const VOCAB = 64;
let n = 0;
async function tinyModel(): Promise<string> {
  const dir = join(tmp, `model-${n++}`);
  await writeTinyQwen2(dir, makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: VOCAB, tie: true, seed: 3, outliers: true }), { dtype: 'F32' });
  return dir;
}

function randomSamples(count: number, len: number, seed: number, vocab = VOCAB): number[][] {
  const rand = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: len }, () => Math.floor(rand() * vocab)));
}

function file(name: string, body: string): string {
  const p = join(tmp, name);
  writeFileSync(p, body);
  return p;
}

function expectNothingWritten(out: string): void {
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(tmp).filter((f) => f.startsWith(`${out.split('/').pop()}.partial`))).toEqual([]);
}

describe('quantize CLI with calibration (GPTQ)', () => {
  it('--calib calib.json: GPTQ by default, cost and per-layer progress, output error GPTQ < RTN in the summary and --report', async () => {
    const model = await tinyModel();
    const samples = randomSamples(16, 32, 5);
    const calib = file('calib.json', serializeCalibJson(samples));
    const out = join(tmp, 'gptq-out');
    const report = join(tmp, 'gptq-report.json');
    const r = await runCli(['--model', model, '--out', out, '--calib', calib, '--report', report]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const sha = await calibIdsSha256(samples);
    expect(r.stderr).toContain(`calibration: calib.json, 16 × 32 tokens (calib.json samples as given), token ids sha256 ${sha}`);
    expect(r.stderr).toMatch(/GPTQ cost ≈ [\d.]+ [MG]FLOP: calibration forward .* \(5 passes per layer\).*on the CPU path at least \d+ s \(this thread's best on the Hessian kernel/);
    // Progress: each layer's calibration forward, Hessian and GPTQ per projection, in order.
    const progress = r.stderr.split('\n').filter((l) => /^ {2}(calib|gptq) {2}/.test(l));
    expect(progress[0]).toMatch(/calib {2}embedding 16 calibration samples/);
    for (const layer of [0, 1]) {
      expect(progress.some((l) => l.includes(`layer ${layer} attn_in: calibration forward and Hessian (16 samples, 512 tokens)`))).toBe(true);
      for (const p of ['self_attn.q_proj', 'self_attn.o_proj', 'mlp.up_proj', 'mlp.down_proj']) {
        expect(progress.some((l) => l.includes(`GPTQ model.layers.${layer}.${p}.weight`))).toBe(true);
      }
    }
    expect(r.stdout).toMatch(/\(output error % on calibration data, GPTQ \/ RTN\)/);
    expect(r.stdout).toMatch(/mean output error GPTQ [\d.]+ % vs RTN [\d.]+ % \(-[\d.]+ %\); 14\/14 projections lower with GPTQ/);
    expect(r.stdout).toContain('rotation full, GPTQ)');

    const qc = JSON.parse(readFileSync(join(out, 'quantization_config.json'), 'utf8'));
    expect(qc.method).toBe('gptq');
    expect(qc.gptq).toMatchObject({ damp: 0.01, act_order: true });
    expect(qc.calibration).toEqual({ source: 'calib.json', samples: 16, seqlen: 32, tokens: 512, token_ids_sha256: sha });
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain('## Output error on the calibration data');
    expect(card).toContain('--method gptq --calib <path to calib.json> --calib-samples 128 --calib-seqlen 512 --calib-seed 0 --act-order true --damp 0.01');
    expect(card).toContain('calib=file%3Acalib.json');

    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep.method).toBe('gptq');
    expect(rep.calibration).toMatchObject({ source: 'calib.json', samples: 16, sha256: sha, spec: { source: 'file:calib.json' } });
    const projections = rep.tensors.filter((t: { kind: string }) => t.kind === 'projection');
    expect(projections).toHaveLength(14);
    for (const t of projections) {
      expect(t.calibError.written).toBeLessThan(t.calibError.rtn);
      expect(t.gptq.deadColumns).toBe(0);
    }
  }, 120_000);

  it('--act-order false and --damp change the bytes; --method rtn ignores --calib (with a notice) and writes RTN', async () => {
    const model = await tinyModel();
    const calib = file('calib-b.json', serializeCalibJson(randomSamples(8, 32, 9)));
    const a = await runCli(['--model', model, '--out', join(tmp, 'ao-on'), '--calib', calib, '--quiet']);
    const b = await runCli(['--model', model, '--out', join(tmp, 'ao-off'), '--calib', calib, '--act-order', 'false', '--damp', '0.1', '--quiet']);
    const c = await runCli(['--model', model, '--out', join(tmp, 'rtn'), '--calib', calib, '--method', 'rtn', '--quiet']);
    expect([a.code, b.code, c.code]).toEqual([0, 0, 0]);
    const qcB = JSON.parse(readFileSync(join(tmp, 'ao-off', 'quantization_config.json'), 'utf8'));
    expect(qcB.gptq).toMatchObject({ damp: 0.1, act_order: false });
    expect(Buffer.compare(readFileSync(join(tmp, 'ao-on', 'model.safetensors')), readFileSync(join(tmp, 'ao-off', 'model.safetensors')))).not.toBe(0);
    expect(c.stderr).toContain('notice: --calib not used: --method rtn needs no calibration');
    const qcC = JSON.parse(readFileSync(join(tmp, 'rtn', 'quantization_config.json'), 'utf8'));
    expect(qcC.method).toBe('rtn');
    expect(qcC.calibration).toBeUndefined();
    expect(c.stdout).not.toContain('output error');
  }, 120_000);

  it.skipIf(!HAVE_FIXTURE)(`a text file is tokenized with the model's tokenizer and sampled ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, async () => {
    const text = readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8').slice(-20_000);
    const calib = file('stories.txt', text);
    const out = join(tmp, 'fixture-text');
    const r = await runCli(['--model', FIXTURE_DIR, '--out', out, '--calib', calib, '--calib-samples', '4', '--calib-seqlen', '64', '--calib-seed', '3', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/calibration: stories\.txt, 4 × 64 tokens \(windows of a \d+-token stream, seed 3\)/);
    const qc = JSON.parse(readFileSync(join(out, 'quantization_config.json'), 'utf8'));
    expect(qc.calibration).toMatchObject({ source: 'stories.txt', samples: 4, seqlen: 64, tokens: 256 });
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('calib=file%3Astories.txt&csamples=4&cseqlen=64&cseed=3');
  }, 120_000);

  it.skipIf(!HAVE_FIXTURE)(`--calib wikitext-2-raw-v1 reads the train split from the hub (--hub-url) ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, async () => {
    const dsDir = join(tmp, 'wikitext');
    const rows = ['', ' = Valkyria Chronicles III = \n', '', ...Array.from({ length: 120 }, (_, i) => ` Senjō no Valkyria ${i} is a tactical role @-@ playing game , released in 2011 . \n`)];
    mkdirSync(join(dsDir, WIKITEXT2_RAW), { recursive: true });
    writeFileSync(join(dsDir, wikitextParquetPath(WIKITEXT2_RAW, 'train')), parquetStringColumn(rows));
    const hub = await startMockHub({ repos: { 'datasets/Salesforce/wikitext': { dir: dsDir } } });
    try {
      const out = join(tmp, 'fixture-wikitext');
      const r = await runCli(['--model', FIXTURE_DIR, '--out', out, '--calib', 'wikitext-2-raw-v1', '--hub-url', hub.url, '--calib-samples', '4', '--calib-seqlen', '64', '--quiet']);
      expect(r.code).toBe(0);
      const info = await readCalibrationModelInfo(await createNodeFsSource(FIXTURE_DIR));
      const expected = sampleCalibration(info.tokenizer!.encode(joinWikiText(rows)), 4, 64, 0);
      const qc = JSON.parse(readFileSync(join(out, 'quantization_config.json'), 'utf8'));
      expect(qc.calibration).toEqual({ source: 'WikiText-2 raw train', samples: 4, seqlen: 64, tokens: 256, token_ids_sha256: await calibIdsSha256(expected) });
      const card = readFileSync(join(out, 'README.md'), 'utf8');
      expect(card).toContain('calib=wikitext-2-raw-v1&csamples=4&cseqlen=64&cseed=0');
      expect(card).toContain('--calib wikitext-2-raw-v1 --calib-samples 4');
    } finally {
      await hub.close();
    }
  }, 120_000);

  describe('bad calibration input: exit 2, a specific message, nothing written', () => {
    const cases: [string, () => Promise<string[]>, RegExp][] = [
      ['--method gptq without --calib', async () => ['--method', 'gptq'], /--method gptq needs calibration data: give --calib/],
      ['an unreadable file', async () => ['--calib', join(tmp, 'missing.json')], /--calib .*missing\.json: cannot read the file \(no such file\)/],
      ['JSON that is not calib.json', async () => ['--calib', file('shape.json', '{"foo": 1}')], /shape\.json: expected a non-empty array of \{"input_ids"/],
      ['broken JSON', async () => ['--calib', file('broken.json', '[{"input_ids": [1, 2')], /broken\.json: not valid JSON/],
      ['ids outside the vocabulary', async () => ['--calib', file('vocab.json', serializeCalibJson([[1, 2, 3], [4, VOCAB, 5]]))], /vocab\.json: sample 1: token id 64 at position 1 is outside the model's vocabulary \(0 to 63\)/],
      ['fewer tokens than one sample', async () => ['--calib', file('short.tokens.json', JSON.stringify({ ids: [1, 2, 3] })), '--calib-seqlen', '8'], /short\.tokens\.json has 3 tokens, fewer than one calibration sample of 8/],
      ['a text file without a tokenizer in the model', async () => ['--calib', file('plain.txt', 'Once upon a time')], /no tokenizer\.json in the model: cannot tokenize the calibration text \(plain\.txt\)/],
      ['--calib-samples 0', async () => ['--calib', file('ok.json', serializeCalibJson([[1, 2]])), '--calib-samples', '0'], /calibration samples: got "0"; expected an integer from 1 to 65536/],
      ['--calib demo on a folder without built-in calibration', async () => ['--calib', 'demo'], /calibration "demo": model-\d+ has no built-in calibration/],
      ['--damp out of range', async () => ['--calib', file('ok2.json', serializeCalibJson([[1, 2]])), '--damp', '2'], /setting damp: got "2"; expected a number from 0 to 1/],
    ];
    it.each(cases)('%s', async (_, args, message) => {
      const model = await tinyModel();
      const out = join(tmp, `bad-${n}`);
      const r = await runCli(['--model', model, '--out', out, ...(await args())]);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
      expectNothingWritten(out);
    }, 60_000);
  });
});

describe('quantize CLI: learned codebooks and mixed precision', () => {
  it('--codebook learned --w8-budget 10% --bits-override: per-tensor bits and codebooks in quantization_config.json; bad specs exit 2', async () => {
    const model = await tinyModel();
    const calib = file('calib-mixed.json', serializeCalibJson(randomSamples(8, 32, 9)));
    const out = join(tmp, 'mixed-out');
    const r = await runCli(['--model', model, '--out', out, '--calib', calib, '--codebook', 'learned', '--w8-budget', '10%', '--bits-override', 'layers.0.mlp.down_proj=8', '--quiet']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const qc = JSON.parse(readFileSync(join(out, 'quantization_config.json'), 'utf8'));
    expect(qc).toMatchObject({ weight_bits: 4, codebook: 'learned', w8_budget: 0.1, bits_override: 'layers.0.mlp.down_proj=8' });
    const per = Object.entries(qc.weight_bits_per_tensor as Record<string, { bits: number; codebook: string }>);
    expect(per.find(([k]) => k === 'model.layers.0.mlp.down_proj.weight')![1]).toEqual({ bits: 8, codebook: 'learned' });
    expect(per.filter(([, v]) => v.bits === 8).length).toBeGreaterThanOrEqual(2); // the override plus the budget's pick
    for (const [args, message] of [
      [['--bits-override', 'dwn_proj=8'], /"dwn_proj" matches no quantized tensor/],
      [['--bits-override', 'down_proj=3'], /bits "3" must be 4, 8 or 16/],
      [['--w8-budget', '150%'], /setting w8-budget: got "150%"/],
      [['--codebook', 'kmeans'], /setting codebook: got "kmeans"; expected uniform or learned/],
    ] as const) {
      const bad = join(tmp, `mixed-bad-${n++}`);
      const e = await runCli(['--model', model, '--out', bad, ...args]);
      expect(e.code, e.stderr).toBe(2);
      expect(e.stderr).toMatch(message);
      expectNothingWritten(bad);
    }
  });
});

describe('quantize CLI: fitted input scales', () => {
  it('--input-scales fitted with --method rtn --calib: the fit takes the calibration; the card reproduces it; a bad value exits 2', async () => {
    const model = await tinyModel();
    const samples = randomSamples(8, 32, 11);
    const calib = file('calib-insc.json', serializeCalibJson(samples));
    const out = join(tmp, 'insc-out');
    const r = await runCli(['--model', model, '--out', out, '--method', 'rtn', '--calib', calib, '--input-scales', 'fitted', '--quiet']);
    expect(r.stderr).not.toMatch(/error|not used/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('calibrated input scales');
    const qc = JSON.parse(readFileSync(join(out, 'quantization_config.json'), 'utf8'));
    expect(qc).toMatchObject({ method: 'rtn', input_scales: 'fitted', input_scales_calibration: { source: 'calib-insc.json', samples: 8, seqlen: 32, token_ids_sha256: await calibIdsSha256(samples) } });
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toMatch(/--input-scales fitted --method rtn --calib <path to calib-insc\.json> /);
    const bad = join(tmp, `insc-bad-${n++}`);
    const e = await runCli(['--model', model, '--out', bad, '--input-scales', 'columns']);
    expect(e.code, e.stderr).toBe(2);
    expect(e.stderr).toMatch(/setting input-scales: got "columns"; expected uniform or fitted/);
    expectNothingWritten(bad);
  }, 120_000);
});
