/**
 * Calibration sets for GPTQ: seed-style sampling (tokenize once, seeded windows), the seed's
 * calib.json in and out, the ids' sha256, every bad input as a specific InputError, the
 * WikiText-2 train split from a mock Hub, the demo's calibration stories, and `npm run calib`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockHub, type MockHub } from '../support/mock-hub';
import { InputError } from '../../src/core/errors';
import { demoCalibrationFromEval, STORY_END, type EvalTokens } from '../../src/demo/calibration-text';
import {
  buildCalibrationSet,
  calibIdsSha256,
  calibrationOffsets,
  parseCalibJson,
  parseDatasetSpec,
  readCalibrationModelInfo,
  sampleCalibration,
  serializeCalibJson,
} from '../../src/eval/calibration-set';
import { loadTokenizer } from '../../src/eval/tokenizer';
import { joinWikiText, WIKITEXT2_RAW, wikitextParquetPath } from '../../src/eval/wikitext';
import { createNodeFsSource } from '../../src/sources/node-fs-source-node';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureJson, fixtureSuite, fixtureText } from '../support/fixture';
import { parquetStringColumn } from '../support/parquet-bytes';

const ROOT = resolve(__dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'quarot-calib-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256Hex = (ids: number[][]): string => createHash('sha256').update(Buffer.from(Int32Array.from(ids.flat()).buffer)).digest('hex');

describe('sampling', () => {
  const stream = Array.from({ length: 1000 }, (_, i) => i);

  it('N windows of L tokens at seeded offsets in [0, n − L]: deterministic, seed-dependent', () => {
    const a = sampleCalibration(stream, 50, 64, 0);
    expect(a.length).toBe(50);
    for (const s of a) {
      expect(s.length).toBe(64);
      expect(s[0]).toBeGreaterThanOrEqual(0);
      expect(s[0]).toBeLessThanOrEqual(1000 - 64);
      expect(s).toEqual(stream.slice(s[0], s[0] + 64)); // contiguous windows of the stream
    }
    expect(sampleCalibration(stream, 50, 64, 0)).toEqual(a);
    expect(sampleCalibration(stream, 50, 64, 1)).not.toEqual(a);
    // The offsets spread over the stream (not all at the start).
    const offs = calibrationOffsets(1000, 200, 64, 0);
    expect(Math.min(...offs)).toBeLessThan(100);
    expect(Math.max(...offs)).toBeGreaterThan(836);
    // A stream of exactly one window gives that window every time.
    expect(sampleCalibration(stream.slice(0, 64), 3, 64, 9)).toEqual([0, 1, 2].map(() => stream.slice(0, 64)));
  });

  it('fewer tokens than one sample is an input error that says what to do', () => {
    expect(() => sampleCalibration(stream.slice(0, 63), 1, 64, 0, 'stories.txt')).toThrow(InputError);
    expect(() => sampleCalibration(stream.slice(0, 63), 1, 64, 0, 'stories.txt')).toThrow(/stories\.txt has 63 tokens, fewer than one calibration sample of 64/);
  });
});

describe('calib.json (the seed format) and the sha256 of the ids', () => {
  it('round-trips; text is the decoding; sha256 = sha256 of the ids as int32 LE', async () => {
    const samples = [[1, 2, 3], [4, 5, 6]];
    const json = serializeCalibJson(samples);
    expect(JSON.parse(json)).toEqual([{ input_ids: [1, 2, 3] }, { input_ids: [4, 5, 6] }]);
    expect(parseCalibJson(json)).toEqual(samples);
    expect(await calibIdsSha256(samples)).toBe(sha256Hex(samples));
    expect(await calibIdsSha256(samples)).not.toBe(await calibIdsSha256([[1, 2, 3], [4, 5, 7]]));
    // A kept batch dimension ([[...]]) is the same sample.
    expect(parseCalibJson('[{"input_ids": [[7, 8]], "text": "x"}]')).toEqual([[7, 8]]);
  });

  it('wrong shapes are specific input errors', () => {
    const cases: [string, RegExp][] = [
      ['{not json', /calib\.json: not valid JSON/],
      ['{"input_ids": [1]}', /non-empty array of \{"input_ids"/],
      ['[]', /non-empty array/],
      ['[{"input_ids": [1, 2]}, {"ids": [3]}]', /sample 1 has no non-empty "input_ids"/],
      ['[{"input_ids": []}]', /sample 0 has no non-empty/],
      ['[{"input_ids": [1, 2.5]}]', /sample 0 "input_ids": expected an array of non-negative integers/],
      ['[{"input_ids": [1, -3]}]', /non-negative integers/],
      ['[[1, 2, 3]]', /sample 0 has no non-empty "input_ids"/],
    ];
    for (const [json, re] of cases) {
      const err = (() => { try { parseCalibJson(json); } catch (e) { return e; } })();
      expect(err, json).toBeInstanceOf(InputError);
      expect((err as Error).message, json).toMatch(re);
    }
  });

  it('buildCalibrationSet: calib.json ids are used as they are, checked against the vocabulary and context', async () => {
    const json = serializeCalibJson([[5, 6, 7, 8], [9, 10]]);
    const set = await buildCalibrationSet({ kind: 'calib-json', json, name: 'my.json' }, { vocabSize: 11, nsamples: 1, seqlen: 512 });
    expect(set.samples).toEqual([[5, 6, 7, 8], [9, 10]]);
    expect(set).toMatchObject({ nsamples: 2, seqlen: 4, uniform: false, origin: 'given', source: 'my.json' });
    expect(set.sha256).toBe(sha256Hex(set.samples));
    await expect(buildCalibrationSet({ kind: 'calib-json', json, name: 'my.json' }, { vocabSize: 10 })).rejects.toThrow(
      /my\.json: sample 1: token id 10 at position 1 is outside the model's vocabulary \(0 to 9\)/,
    );
    await expect(buildCalibrationSet({ kind: 'calib-json', json }, { vocabSize: 11, maxPositions: 3 })).rejects.toThrow(/4 tokens, more than the model's max_position_embeddings 3/);
  });
});

describe('sampled sources', () => {
  it('token ids: vocabulary, counts, seed and context are checked before sampling', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => i % 50);
    const set = await buildCalibrationSet({ kind: 'tokens', ids, name: 'ids.json' }, { vocabSize: 50, nsamples: 8, seqlen: 32, seed: 3 });
    expect(set.samples).toEqual(sampleCalibration(ids, 8, 32, 3));
    expect(set).toMatchObject({ nsamples: 8, seqlen: 32, uniform: true, origin: 'sampled', seed: 3, streamTokens: 300, source: 'ids.json' });
    await expect(buildCalibrationSet({ kind: 'tokens', ids }, { vocabSize: 49 })).rejects.toThrow(/token id 49 at position 49 is outside/);
    await expect(buildCalibrationSet({ kind: 'tokens', ids }, { vocabSize: 50, seqlen: 301 })).rejects.toThrow(/300 tokens, fewer than one calibration sample of 301/);
    await expect(buildCalibrationSet({ kind: 'tokens', ids }, { vocabSize: 50, nsamples: 0 })).rejects.toThrow(/calibration samples 0/);
    await expect(buildCalibrationSet({ kind: 'tokens', ids }, { vocabSize: 50, seqlen: 64, maxPositions: 32 })).rejects.toThrow(/exceeds the model's max_position_embeddings 32/);
    await expect(buildCalibrationSet({ kind: 'text', text: 'hello' }, { vocabSize: 50 })).rejects.toThrow(/no tokenizer\.json/);
  });

  it.skipIf(!HAS_FIXTURE)(fixtureSuite('text: tokenized once with the model tokenizer, then windows of that stream'), async () => {
    const info = await readCalibrationModelInfo(await createNodeFsSource(FIXTURE_DIR));
    expect(info.vocabSize).toBe(512);
    expect(info.maxPositions).toBe(512);
    const text = fixtureText('eval.txt').slice(60_000);
    const set = await buildCalibrationSet({ kind: 'text', text, name: 'half.txt' }, { ...info, nsamples: 16, seqlen: 256 });
    const stream = info.tokenizer!.encode(text);
    expect(set.streamTokens).toBe(stream.length);
    expect(set.samples).toEqual(sampleCalibration(stream, 16, 256, 0));
    expect(set.sha256).toBe(sha256Hex(set.samples));
    const file = new File([text], 'half.txt');
    expect((await buildCalibrationSet({ kind: 'file', file }, { ...info, nsamples: 16, seqlen: 256 })).samples).toEqual(set.samples);
  });
});

describe('dataset specs', () => {
  it('parse to repo, config and split (train by default)', () => {
    expect(parseDatasetSpec('wikitext-2-raw-v1')).toEqual({ kind: 'wikitext2', repo: 'Salesforce/wikitext', config: 'wikitext-2-raw-v1', split: 'train' });
    expect(parseDatasetSpec('org/texts:cfg/validation')).toEqual({ kind: 'wikitext2', repo: 'org/texts', config: 'cfg', split: 'validation' });
    expect(() => parseDatasetSpec('wikitext-2-raw-v1/dev')).toThrow(InputError);
  });
});

/** Run `npm run calib` as a child process (async: the mock hub lives in this process). */
function calibCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/calib.ts'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('WikiText-2 train split from a mock Hub, and npm run calib'), () => {
  let hub: MockHub;
  const dsDir = join(tmp, 'wikitext');
  // WikiText-like rows; enough text for a few 128-token samples with the fixture tokenizer.
  const rows = ['', ' = Valkyria Chronicles III = \n', '', ...Array.from({ length: 200 }, (_, i) => ` Senjō no Valkyria ${i} is a tactical role @-@ playing game , released in 2011 . \n`)];
  beforeAll(async () => {
    mkdirSync(join(dsDir, WIKITEXT2_RAW), { recursive: true });
    writeFileSync(join(dsDir, wikitextParquetPath(WIKITEXT2_RAW, 'train')), parquetStringColumn(rows));
    // A different test split, so reading the wrong one would show.
    writeFileSync(join(dsDir, wikitextParquetPath(WIKITEXT2_RAW, 'test')), parquetStringColumn(['', ' test split only \n']));
    hub = await startMockHub({ repos: { 'datasets/Salesforce/wikitext': { dir: dsDir } } });
  });
  afterAll(async () => {
    await hub.close();
  });

  it('buildCalibrationSet reads the train split (not the test split) and samples the joined text', async () => {
    const info = await readCalibrationModelInfo(await createNodeFsSource(FIXTURE_DIR));
    hub.log.length = 0;
    const set = await buildCalibrationSet({ kind: 'wikitext2', hubUrl: hub.url }, { ...info, nsamples: 4, seqlen: 128 });
    expect(set.source).toBe('WikiText-2 raw train');
    const paths = new Set(hub.log.filter((e) => e.method === 'GET').map((e) => e.path));
    expect([...paths].some((p) => p.endsWith('/wikitext-2-raw-v1/train-00000-of-00001.parquet'))).toBe(true);
    expect([...paths].some((p) => p.includes('test-00000'))).toBe(false);
    expect(set.samples).toEqual(sampleCalibration(info.tokenizer!.encode(joinWikiText(rows)), 4, 128, 0));
  });

  it('the CLI writes the seed format, deterministically, from the dataset and from a text file', async () => {
    const out = join(tmp, 'calib.json');
    const r = await calibCli(['--model', FIXTURE_DIR, '--out', out, '--nsamples', '4', '--seqlen', '128', '--hub-url', hub.url]);
    expect(r.stderr).toMatch(/reading Salesforce\/wikitext wikitext-2-raw-v1 train/);
    expect(r.code).toBe(0);
    const written = JSON.parse(readFileSync(out, 'utf8')) as { input_ids: number[]; text: string }[];
    const info = await readCalibrationModelInfo(await createNodeFsSource(FIXTURE_DIR));
    const expected = sampleCalibration(info.tokenizer!.encode(joinWikiText(rows)), 4, 128, 0);
    expect(written.map((s) => s.input_ids)).toEqual(expected);
    expect(written[0].text).toBe(info.tokenizer!.decode(expected[0], { skipSpecial: false }));
    expect(r.stdout).toContain(`sha256 of the token ids (int32 LE): ${sha256Hex(expected)}`);
    expect(r.stdout).toMatch(/4 samples × 128 tokens from WikiText-2 raw train/);

    const textFile = join(tmp, 'stories.txt');
    writeFileSync(textFile, fixtureText('eval.txt').slice(64_000));
    const a = join(tmp, 'a.json');
    const b = join(tmp, 'b.json');
    expect((await calibCli(['--model', FIXTURE_DIR, '--out', a, '--text', textFile, '--nsamples', '8', '--seqlen', '256', '--seed', '5'])).code).toBe(0);
    expect((await calibCli(['--model', FIXTURE_DIR, '--out', b, '--text', textFile, '--nsamples', '8', '--seqlen', '256', '--seed', '5'])).code).toBe(0);
    expect(readFileSync(a)).toEqual(readFileSync(b));
    const ids = (JSON.parse(readFileSync(a, 'utf8')) as { input_ids: number[] }[]).map((s) => s.input_ids);
    expect(ids).toEqual(sampleCalibration(info.tokenizer!.encode(readFileSync(textFile, 'utf8')), 8, 256, 5));
    // What it wrote is a valid calibration set for the same model.
    const back = await buildCalibrationSet({ kind: 'calib-json', json: readFileSync(a, 'utf8') }, info);
    expect(back.samples).toEqual(ids);
  });

  it('bad input: exit 2, a specific message, no file written', async () => {
    const out = join(tmp, 'bad.json');
    const short = join(tmp, 'short.txt');
    writeFileSync(short, 'Once upon a time.');
    const cases: [string[], RegExp][] = [
      [['--text', join(tmp, 'missing.txt')], /--text .*missing\.txt: cannot read the file \(ENOENT\)/],
      [['--text', short], /short\.txt has \d+ tokens, fewer than one calibration sample of 512/],
      [['--text', short, '--seqlen', '1024'], /exceeds the model's max_position_embeddings 512/],
      [['--dataset', 'wikitext-2-raw-v1/validation', '--hub-url', hub.url], /validation-00000-of-00001\.parquet/],
      [['--nsamples', '0'], /--nsamples 0: expected an integer from 1/],
      [['--text', short, '--dataset', 'wikitext-2-raw-v1'], /at most one of --text/],
    ];
    for (const [args, re] of cases) {
      const r = await calibCli(['--model', FIXTURE_DIR, '--out', out, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(tmp).filter((f) => f.includes('.partial'))).toEqual([]);
  });
});

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('the TinyStories demo calibration stories'), () => {
  it('come from the second half of eval.txt, clear of the first 40 × 256 evaluated tokens, in the model training format', () => {
    const tokens = fixtureJson<EvalTokens>('eval.tokens.json');
    const evalText = fixtureText('eval.txt');
    const c = demoCalibrationFromEval(evalText, tokens);
    expect(c.firstToken).toBeGreaterThanOrEqual(40 * 256);
    expect(c.firstToken).toBeGreaterThanOrEqual(tokens.ids.length / 2);
    expect(c.firstToken).toBe(tokens.story_starts[c.firstStory]);
    expect(tokens.story_starts[c.firstStory - 1]).toBeLessThan(Math.max(40 * 256, tokens.ids.length / 2)); // the first story that qualifies
    expect(c.ids).toEqual(tokens.ids.slice(c.firstToken));
    // The text is those stories (suffix of eval.txt), and its ids are BOS + each story's ids.
    expect(evalText.endsWith(c.text)).toBe(true);
    expect(c.text.startsWith(evalText.split(STORY_END)[c.firstStory])).toBe(true);
    const tok = loadTokenizer(fixtureText('tokenizer.json'), fixtureText('tokenizer_config.json'));
    const stories = c.text.split(STORY_END).slice(0, -1);
    expect(stories.flatMap((s) => tok.encode(s, { addBos: true }))).toEqual(c.ids);
    // No evaluated window's text is in the calibration text.
    const evalWindowsText = tok.decode(tokens.ids.slice(0, 40 * 256));
    expect(c.text.includes(evalWindowsText.slice(-200))).toBe(false);
    console.log(`demo calibration: stories ${c.firstStory}–${tokens.story_starts.length - 1}, eval ids ${c.firstToken}–${tokens.ids.length - 1} (${c.ids.length} tokens, ${c.text.length} chars)`);
  });
});

describe('--calib argument (readCalibrationArg)', () => {
  it('a calib.json, a token-stream JSON, a text file or a dataset spec; unreadable and malformed files are input errors', async () => {
    const { readCalibrationArg } = await import('../../src/cli/calib-source');
    const cj = join(tmp, 'arg-calib.json');
    writeFileSync(cj, serializeCalibJson([[1, 2]]));
    expect(await readCalibrationArg(cj)).toEqual({ kind: 'calib-json', json: readFileSync(cj, 'utf8'), name: 'arg-calib.json' });
    const tj = join(tmp, 'arg-tokens.json');
    writeFileSync(tj, JSON.stringify({ ids: [1, 2, 3] }));
    expect(await readCalibrationArg(tj)).toEqual({ kind: 'tokens', ids: [1, 2, 3], name: 'arg-tokens.json' });
    const tx = join(tmp, 'arg.txt');
    writeFileSync(tx, 'some text');
    expect(await readCalibrationArg(tx)).toEqual({ kind: 'text', text: 'some text', name: 'arg.txt' });
    expect(await readCalibrationArg('wikitext-2-raw-v1', { hubUrl: 'http://127.0.0.1:1' })).toMatchObject({ kind: 'wikitext2', split: 'train', hubUrl: 'http://127.0.0.1:1' });
    await expect(readCalibrationArg(join(tmp, 'nope.json'))).rejects.toThrow(/--calib .*nope\.json: cannot read the file/);
    const bad = join(tmp, 'arg-bad.json');
    writeFileSync(bad, '[{"input_ids": [1,');
    await expect(readCalibrationArg(bad)).rejects.toThrow(/arg-bad\.json: not valid JSON/);
    writeFileSync(bad, '{"ids": 5}');
    await expect(readCalibrationArg(bad)).rejects.toThrow(/"ids" must be an array/);
  });
});
