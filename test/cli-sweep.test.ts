/**
 * `quantize --sweep` on the tinystories-260k fixture (real child processes): the cost estimate
 * comes first, one line per point as it finishes, then the table with the best marked. Each
 * point's perplexity is the very number `npm run eval` gives for the bundle of that point made
 * alone (`quantize --method … --codebook … --w8-budget …`), the bundle --pick writes is
 * byte-identical to that alone-made bundle, and bad grids or flag combinations exit 2 with a
 * specific message and write nothing.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite } from './support/fixture';
import { ROOT, runCli, runProcess, type CliResult } from './support/cli';

const tmp = mkdtempSync(join(tmpdir(), 'quarot-cli-sweep-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const GRID = 'method=rtn,gptq;codebook=learned;w8=0,10';
const CALIB = ['--calib', join(FIXTURE_DIR, 'eval.txt'), '--calib-samples', '8', '--calib-seqlen', '128'];
const EVAL = ['--eval-tokens', join(FIXTURE_DIR, 'eval.tokens.json'), '--eval-windows', '4', '--eval-seqlen', '256'];

function evalCli(args: string[]): Promise<CliResult> {
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/eval.ts'), ...args]);
}

function folderFiles(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).sort()) if (statSync(join(dir, f)).isFile()) out[f] = readFileSync(join(dir, f));
  return out;
}

interface PointJson { index: number; method: string; codebook: string; w8_budget: number; ppl: number; delta_ppl: number; bytes: number; best: boolean }

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('quantize --sweep on tinystories-260k'), () => {
  let sweep: CliResult;
  let json: { ppl_original: number; best: number; points: PointJson[]; evaluation: { windows: number; seqlen: number; predictions: number } };
  const picked = join(tmp, 'picked');

  beforeAll(async () => {
    sweep = await runCli(['--model', FIXTURE_DIR, '--sweep', GRID, ...CALIB, ...EVAL, '--sweep-json', join(tmp, 'sweep.json'), '--pick', 'best', '--out', picked, '--quiet'], { timeoutMs: 150_000 });
    if (sweep.code === 0) json = JSON.parse(readFileSync(join(tmp, 'sweep.json'), 'utf8'));
  }, 160_000);

  it('prints the cost estimate first, a line per point as it finishes, then the table with the best marked', () => {
    expect(sweep.stderr).not.toMatch(/error/i);
    expect(sweep.code).toBe(0);
    const lines = sweep.stdout.split('\n');
    expect(lines[0]).toBe(`sweep: 4 points (${GRID}) on top of {"bits":4,"scheme":"sp","clip":"mse","rotation":"full","quantizeEmbeddings":true,"dtype":"f16"}`);
    expect(lines[1]).toMatch(/^ {2}2 RTN runs, 2 GPTQ runs, one W8 sensitivity pass .*; 5 perplexity runs \(the original once, each point once\) of 4 windows × 256 tokens/);
    expect(lines[2]).toMatch(/^ {2}each GPTQ run ≈ [\d.]+ [MG]FLOP: calibration forward/);
    const pointLines = lines.filter((l) => /^\[\d\/4\] /.test(l));
    expect(pointLines.map((l) => l.slice(0, 30).split(':')[0])).toEqual(['[1/4] rtn learned W8 0 %', '[2/4] rtn learned W8 10 %', '[3/4] gptq learned W8 0 %', '[4/4] gptq learned W8 10 %']);
    // Lines before the table, in grid order; each with the figures the JSON has.
    expect(lines.indexOf(pointLines[0])).toBeGreaterThan(2);
    for (const p of json.points) {
      expect(pointLines[p.index]).toContain(`ppl ${p.ppl.toFixed(4)} (Δ +${p.delta_ppl.toFixed(4)}), ${(p.bytes / 1e6).toFixed(3)} MB`);
    }
    const header = lines.findIndex((l) => /^ +# +method +codebook +W8 % +ppl +Δppl vs FP +size MB +time s$/.test(l));
    expect(header).toBeGreaterThan(lines.indexOf(pointLines[3]));
    const rows = lines.slice(header + 1, header + 5);
    const best = json.points.reduce((b, p) => (p.ppl < b.ppl ? p : b));
    expect(json.best).toBe(best.index);
    rows.forEach((row, i) => {
      const cells = row.trim().split(/\s+/);
      expect(cells[0]).toBe(`${i === best.index ? '*' : ''}${i + 1}`);
      expect(cells.slice(1, 6)).toEqual([json.points[i].method, 'learned', String(json.points[i].w8_budget * 100), json.points[i].ppl.toFixed(4), `+${json.points[i].delta_ppl.toFixed(4)}`]);
    });
    expect(lines[header - 1]).toBe(`perplexity on token ids from ${join(FIXTURE_DIR, 'eval.tokens.json')}: 4 windows × 256 tokens (1020 predictions); original (FP) ${json.ppl_original.toFixed(4)}`);
    expect(sweep.stdout).toContain(`wrote row ${best.index + 1} (${best.method} / learned / W8 ${best.w8_budget * 100} %)`);
    // The W8 points' 8-bit projections make their bundles larger.
    const [rtn0, rtn10, gptq0, gptq10] = json.points;
    expect(rtn10.bytes).toBeGreaterThan(rtn0.bytes);
    expect(gptq10.bytes).toBeGreaterThan(gptq0.bytes);
  });

  it('each point\'s perplexity equals what eval gives for that point quantized alone; --pick best is byte-identical to it', async () => {
    expect(sweep.code).toBe(0);
    for (const p of json.points) {
      const out = join(tmp, `alone-${p.index}`);
      const q = await runCli(['--model', FIXTURE_DIR, '--out', out, '--method', p.method, '--codebook', p.codebook, '--w8-budget', `${p.w8_budget * 100}%`, ...CALIB, '--quiet']);
      expect(q.code, q.stderr).toBe(0);
      const e = await evalCli(['--model', FIXTURE_DIR, '--bundle', out, '--tokens', join(FIXTURE_DIR, 'eval.tokens.json'), '--windows', '4', '--seqlen', '256', '--json']);
      expect(e.code, e.stderr).toBe(0);
      const ev = JSON.parse(e.stdout);
      expect(ev.ppl_quantized).toBe(p.ppl);
      expect(ev.ppl_original).toBe(json.ppl_original);
      expect(p.delta_ppl).toBe(ev.ppl_quantized - ev.ppl_original);
      expect(ev.predictions).toBe(json.evaluation.predictions);
      // The size is every file the pipeline wrote (the folder adds its manifest).
      const files = folderFiles(out);
      expect(p.bytes).toBe(Object.entries(files).filter(([f]) => f !== 'manifest.sha256').reduce((s, [, d]) => s + d.length, 0));
      if (p.index === json.best) {
        const pick = folderFiles(picked);
        expect(Object.keys(pick)).toEqual(Object.keys(files));
        for (const f of Object.keys(files)) expect(pick[f].equals(files[f]), f).toBe(true);
      }
    }
  }, 150_000);

  it.each([
    [['--sweep', 'method=awq'], /--sweep "method=awq": method "awq" is not one of rtn, gptq/],
    [['--sweep', 'w8=0,200'], /w8 value "200" is not a percentage from 0 to 100/],
    [['--sweep', 'bits=8'], /unknown key "bits"/],
    [['--sweep', '--method', 'gptq'], /--sweep sets --method per point; put it in the grid/],
    [['--sweep', 'method=rtn', '--codebook', 'learned', '--w8-budget', '5%'], /--sweep sets --codebook, --w8-budget per point; put them in the grid/],
    [['--sweep', 'method=rtn;w8=0', '--pick', '3', '--out', 'OUT'], /--pick 3: expected best or a row number from 1 to 2 \(the grid has 2 points\)/],
    [['--sweep', '--pick', 'best'], /--pick writes the chosen point's bundle: give --out DIR/],
    [['--sweep', 'method=rtn;w8=0', '--out', 'OUT'], /give --pick best\|N to say which point's bundle to write/],
    [['--sweep', 'method=gptq;w8=0'], /the grid has GPTQ or W8-budget points, which need calibration data: give --calib/],
    [['--sweep', 'method=rtn;w8=5'], /the grid has GPTQ or W8-budget points, which need calibration data/],
    [['--sweep', '--bits', '16', ...CALIB], /--bits 16 quantizes nothing/],
    [['--sweep', '--bits', '8', ...CALIB], /--bits 8 has none; give the grid w8=0/],
    [['--sweep', 'method=rtn;w8=0', '--eval-seqlen', '64'], /--eval-seqlen 64: expected an integer from 128 to 2048/],
    [['--sweep', 'method=rtn;w8=0', '--eval-tokens', join(FIXTURE_DIR, 'config.json')], /--eval-tokens .*config.json "ids": expected an array/],
    [['--pick', 'best', '--out', 'OUT'], /--pick only work with --sweep/],
  ])('bad sweep input %j exits 2 with a specific message, nothing written', async (args, msg) => {
    const out = join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = await runCli(['--model', FIXTURE_DIR, ...args.map((a) => (a === 'OUT' ? out : a))]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stdout).not.toMatch(/^\[1\//m);
    expect(existsSync(out)).toBe(false);
  });

  it('--help describes the sweep', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--sweep \[GRID\] +quantize every point of GRID in memory and score each/);
    expect(r.stdout).toContain("'method=rtn,gptq;codebook=uniform,learned;w8=0,5,10' (the default;");
    expect(r.stdout).toMatch(/--pick best\|N --out DIR +write the best point's \(or row N's\) bundle to DIR/);
  });
});
