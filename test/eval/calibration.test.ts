/**
 * Calibration text (SPEC §7): WikiText-2 parquet from a (mock) Hub dataset read with range
 * requests, dropped files, token ids; tokenize once; non-overlapping windows.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockHub, type MockHub } from '../support/mock-hub';
import { CancelledError, InputError } from '../../src/core/errors';
import {
  availableWindows,
  calibrationTokens,
  calibrationWindows,
  checkSeqlen,
  describeCalibration,
  SEQLEN_CHOICES,
} from '../../src/eval/calibration';
import { loadTokenizer } from '../../src/eval/tokenizer';
import { fetchWikiTextRows, joinWikiText, WIKITEXT2_RAW, wikitextParquetPath } from '../../src/eval/wikitext';
import { HAS_FIXTURE, fixtureSuite, fixtureText } from '../support/fixture';
import { parquetStringColumn } from '../support/parquet-bytes';

// WikiText-2's shape: empty lines, " = Heading = " lines, paragraphs with " @-@ " and unicode.
const ROWS = [
  '',
  ' = Robert Boulter = \n',
  '',
  ' Robert Boulter is an English film and television actor . He had a guest @-@ starring role on the television series The Bill in 2000 . \n',
  ' In 2006 , Boulter starred alongside Whishaw in the play Herons written by Simon Stephens — café , naïve . \n',
  '',
  ...Array.from({ length: 40 }, (_, i) => ` Paragraph ${i} of the test split , with numbers like 1 @,@ 000 and 3 @.@ 5 . \n`),
];

describe('parquet bytes helper (hyparquet-writer is not installed)', () => {
  it('hyparquet reads back what it wrote', async () => {
    const bytes = parquetStringColumn(ROWS);
    const rows = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer });
    expect(rows.map((r) => r.text)).toEqual(ROWS);
  });
});

describe('WikiText-2 from a mock Hub dataset', () => {
  let hub: MockHub;
  const dir = mkdtempSync(join(tmpdir(), 'wikitext-'));
  // Padding rows make the file larger than one hyparquet footer read, so reads are true ranges.
  const big = [...ROWS, ...Array.from({ length: 3000 }, (_, i) => ` filler row ${i} ${'x'.repeat(200)} \n`)];
  beforeAll(async () => {
    mkdirSync(join(dir, WIKITEXT2_RAW), { recursive: true });
    writeFileSync(join(dir, wikitextParquetPath()), parquetStringColumn(big));
    hub = await startMockHub({ repos: { 'datasets/Salesforce/wikitext': { dir } } });
  });
  afterAll(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the test split rows over range requests and joins them with "\\n\\n"', async () => {
    expect(wikitextParquetPath()).toBe('wikitext-2-raw-v1/test-00000-of-00001.parquet');
    hub.log.length = 0;
    const rows = await fetchWikiTextRows({ hubUrl: hub.url });
    expect(rows).toEqual(big);
    expect(joinWikiText(rows.slice(0, 4))).toBe(`\n\n = Robert Boulter = \n\n\n\n\n${ROWS[3]}`);
    const gets = hub.log.filter((e) => e.method === 'GET' && e.path.endsWith('.parquet'));
    expect(gets.length).toBeGreaterThan(1);
    expect(gets.every((e) => e.range !== undefined && e.status === 206)).toBe(true);
    expect(gets[0].path).toBe('/datasets/Salesforce/wikitext/resolve/main/wikitext-2-raw-v1/test-00000-of-00001.parquet');
    // Footer first, then the column chunk: less than the whole file went over the wire twice.
    const size = hub.fileContent('datasets/Salesforce/wikitext', wikitextParquetPath()).length;
    expect(gets.reduce((n, e) => n + e.bytesSent, 0)).toBeLessThan(2 * size);
  });

  it('uses the injected fetch, and cancels through it', async () => {
    let calls = 0;
    const f: typeof fetch = (input, init) => {
      calls++;
      return fetch(input, init);
    };
    await fetchWikiTextRows({ hubUrl: hub.url, fetch: f });
    expect(calls).toBeGreaterThan(1);
    const ctl = new AbortController();
    ctl.abort();
    await expect(fetchWikiTextRows({ hubUrl: hub.url, signal: ctl.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('a missing split or a non-parquet file is a clear input error', async () => {
    await expect(fetchWikiTextRows({ hubUrl: hub.url, split: 'validation' })).rejects.toThrow(/validation-00000-of-00001\.parquet/);
    hub.setFile('datasets/Salesforce/wikitext', wikitextParquetPath(), new TextEncoder().encode('not parquet at all'));
    const err = await fetchWikiTextRows({ hubUrl: hub.url }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/as parquet/);
    hub.setFile('datasets/Salesforce/wikitext', wikitextParquetPath(), parquetStringColumn(big));
  });

  it.skipIf(!HAS_FIXTURE)('calibrationTokens: the joined text tokenized once, then windows', async () => {
    const tok = loadTokenizer(fixtureText('tokenizer.json'), fixtureText('tokenizer_config.json'));
    const ids = await calibrationTokens({ kind: 'wikitext2', hubUrl: hub.url }, tok);
    expect(ids).toEqual(tok.encode(joinWikiText(big)));
    expect(ids[0]).toBe(1); // this tokenizer's config adds BOS once, at the start
    expect(ids.filter((x) => x === 1).length).toBe(1);
    const w = calibrationWindows(ids, 128, 5);
    expect(w.length).toBe(5);
    expect(w[1]).toEqual(ids.slice(128, 256));
  });
});

describe('other sources and window rules', () => {
  const tok = HAS_FIXTURE ? loadTokenizer(fixtureText('tokenizer.json'), fixtureText('tokenizer_config.json')) : undefined;

  it.skipIf(!HAS_FIXTURE)(fixtureSuite('a dropped file and a string give the same ids'), async () => {
    const text = fixtureText('eval.txt').slice(0, 5000);
    const file = new File([text], 'stories.txt');
    const a = await calibrationTokens({ kind: 'file', file }, tok);
    expect(a).toEqual(await calibrationTokens({ kind: 'text', text }, tok));
    expect(describeCalibration({ kind: 'file', file })).toBe('stories.txt');
    expect(describeCalibration({ kind: 'wikitext2' })).toBe('WikiText-2 raw test');
  });

  it('token ids pass through; no tokenizer for text is an input error', async () => {
    expect(await calibrationTokens({ kind: 'tokens', ids: [1, 2, 3] }, undefined)).toEqual([1, 2, 3]);
    await expect(calibrationTokens({ kind: 'tokens', ids: [1, -2] as number[] }, undefined)).rejects.toThrow(/non-negative integers/);
    await expect(calibrationTokens({ kind: 'text', text: 'x' }, undefined)).rejects.toThrow(/no tokenizer/);
  });

  it('seqlen 128–2048 and within the model context; windows cut without overlap, tail dropped', () => {
    expect(SEQLEN_CHOICES).toEqual([128, 256, 512, 1024, 2048]);
    expect(checkSeqlen(256)).toBe(256);
    expect(() => checkSeqlen(64)).toThrow(/128 to 2048/);
    expect(() => checkSeqlen(4096)).toThrow(/128 to 2048/);
    expect(() => checkSeqlen(1024, 512)).toThrow(/max_position_embeddings 512/);
    const ids = Array.from({ length: 1000 }, (_, i) => i);
    expect(availableWindows(1000, 256)).toBe(3);
    expect(calibrationWindows(ids, 256).length).toBe(3);
    expect(calibrationWindows(ids, 256, 2)).toEqual([ids.slice(0, 256), ids.slice(256, 512)]);
    expect(() => calibrationWindows(ids.slice(0, 100), 128)).toThrow(/fewer than one window/);
    expect(() => calibrationWindows(ids, 128, 0)).toThrow(/positive integer/);
  });
});
