#!/usr/bin/env node
/**
 * eval — the quality check from the command line (the same runQualityCheck as the app):
 *   npm run eval -- --model <dir|org/repo> --bundle <dir> [--bundle <dir> …] (--text <file> | --tokens <ids.json> | --wikitext | --builtin-text)
 *     --seqlen 256 --windows 8 [--json] [--prompt "Once upon a time" --gen 20] [--device cpu|webgpu]
 *     [--hub-url URL] [--revision REV] [--update-card]
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError, InputError } from '../core/errors';
import { checkIds, checkSeqlen, SEQLEN_MAX, SEQLEN_MIN } from '../eval/calibration';
import { updateCardQuality, updateManifestLine } from '../eval/card-update';
import { qualityFigures, runQualityCheck, type EvalDevice, type QualityCheckResult } from '../eval/check';
import type { GpuRuntime } from '../gpu/runtime';
import { fetchWikiTextRows, joinWikiText } from '../eval/wikitext';
import { BUILTIN_TEXT, BUILTIN_TEXT_LABEL } from '../eval/builtin-text';
import { compareBundles, type BundleComparison } from '../eval/compare-bundles';
import { createNodeFsSource } from '../sources/node-fs-source-node';
import { openCliSource } from './source';

const USAGE = `usage: npm run eval -- --model <dir|org/repo> --bundle <dir> [--bundle <dir> …] (--text <file> | --tokens <ids.json> | --wikitext | --builtin-text) [options]
  --model DIR|ORG/NAME   the original model (local folder or Hub repo)
  --bundle DIR           a quantized bundle folder; repeat it to compare bundles of the same
                         model on the same windows (a table and a verdict by perplexity/KL)
  --text FILE            evaluation text (UTF-8), tokenized once
  --tokens FILE          JSON with an "ids" array (like the demo model's eval.tokens.json)
  --wikitext             WikiText-2 raw test split from the Hub dataset Salesforce/wikitext
  --builtin-text         the app's built-in evaluation text (offline)
  --seqlen N             window length, ${SEQLEN_MIN}–${SEQLEN_MAX}                            [256]
  --windows N|all        windows to evaluate (the first N)                  [8]
  --prompt TEXT          also generate greedily from this prompt, both models
  --gen N                tokens to generate                                  [20]
  --device cpu|webgpu    where the forward pass runs                         [cpu]
  --revision REV         Hub revision of --model                             [main]
  --hub-url URL          Hub or mirror address (also for --wikitext)
  --token hf_...         Hub token (or env HF_TOKEN)
  --json                 print the figures as JSON
  --update-card          add the figures to the bundle's README.md (and manifest.sha256)`;

function intArg(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InputError(`--${name} ${v}: expected an integer from ${min} to ${max}`);
  return n;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function updateCard(bundleDir: string, figures: Record<string, number | string>): Promise<void> {
  const readmePath = join(bundleDir, 'README.md');
  const readme = await readFile(readmePath, 'utf8').catch(() => '');
  const next = updateCardQuality(readme, figures);
  await writeFile(readmePath, next);
  const manifestPath = join(bundleDir, 'manifest.sha256');
  const manifest = await readFile(manifestPath, 'utf8').catch(() => undefined);
  if (manifest !== undefined) await writeFile(manifestPath, updateManifestLine(manifest, 'README.md', sha256(new TextEncoder().encode(next))));
}

/** The comparison as a table: one row per bundle, the original first, then the verdict. */
function comparisonReport(c: BundleComparison): string {
  const rows = [
    ['bundle', 'perplexity', 'change', 'mean KL', 'top-1'],
    ['(original)', c.pplOriginal.toFixed(4), '', '', ''],
    ...c.bundles.map((b, i) => [
      `${i === c.best ? '* ' : ''}${b.label}`, b.pplQuantized.toFixed(4), `${b.pplChangePct >= 0 ? '+' : ''}${b.pplChangePct.toFixed(2)} %`,
      b.klMean.toExponential(3), `${(b.top1Agreement * 100).toFixed(2)} %`,
    ]),
  ];
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const lines = rows.map((r) => r.map((x, j) => (j === 0 ? x.padEnd(widths[j]) : x.padStart(widths[j]))).join('  '));
  return [
    `evaluation: ${c.textLabel ?? 'text'} — ${c.windows} windows × ${c.seqlen} tokens (${c.predictions} predictions), ${c.device}`,
    ...lines,
    '',
    c.verdict,
  ].join('\n');
}

function comparisonJson(c: BundleComparison): string {
  return JSON.stringify(
    {
      ppl_original: c.pplOriginal,
      windows: c.windows,
      seqlen: c.seqlen,
      predictions: c.predictions,
      device: c.device,
      bundles: c.bundles.map((b, i) => ({
        bundle: b.label, ppl_quantized: b.pplQuantized, ppl_change_pct: b.pplChangePct, kl_mean: b.klMean, top1_agreement: b.top1Agreement, clear: c.clear[i],
      })),
      best: c.bundles[c.best].label,
      verdict: c.verdict,
    },
    null,
    1,
  );
}

function report(r: QualityCheckResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const lines = [
    `evaluation: ${r.textLabel ?? 'text'} — ${r.windows} of ${r.windowsAvailable} windows × ${r.seqlen} tokens (${r.predictions} predictions), ${r.device}${r.adapter ? ` (${r.adapter})` : ''}`,
    `perplexity  original ${r.pplOriginal.toFixed(4)}   quantized ${r.pplQuantized.toFixed(4)}   (${r.pplQuantized >= r.pplOriginal ? '+' : ''}${pct(r.pplQuantized / r.pplOriginal - 1)})`,
    `mean KL(original ‖ quantized) ${r.klMean.toExponential(3)} nats/token   top-1 agreement ${pct(r.top1Agreement)}`,
  ];
  if (r.generation) {
    lines.push('', `original:  ${JSON.stringify(r.generation.original)}`, `quantized: ${JSON.stringify(r.generation.quantized)}`);
  }
  lines.push(`(${(r.elapsedMs / 1000).toFixed(1)} s)`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' }, bundle: { type: 'string', multiple: true }, 'builtin-text': { type: 'boolean' }, text: { type: 'string' }, tokens: { type: 'string' },
        wikitext: { type: 'boolean' }, seqlen: { type: 'string' }, windows: { type: 'string' }, prompt: { type: 'string' },
        gen: { type: 'string' }, device: { type: 'string' }, revision: { type: 'string' }, 'hub-url': { type: 'string' },
        token: { type: 'string' }, json: { type: 'boolean' }, 'update-card': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  let gpu: GpuRuntime | undefined;
  try {
    const bundleArgs = (values.bundle as string[] | undefined) ?? [];
    if (!values.model || bundleArgs.length === 0) throw new InputError('--model and --bundle are required');
    const inputs = [values.text, values.tokens, values.wikitext, values['builtin-text']].filter((v) => v !== undefined && v !== false).length;
    if (inputs !== 1) throw new InputError('give exactly one of --text FILE, --tokens FILE, --wikitext or --builtin-text');
    const seqlen = checkSeqlen(intArg(values.seqlen as string | undefined, 'seqlen', 256, SEQLEN_MIN, SEQLEN_MAX));
    const windows = values.windows === 'all' ? undefined : intArg(values.windows as string | undefined, 'windows', 8, 1, 1_000_000);
    const gen = intArg(values.gen as string | undefined, 'gen', 20, 0, 4096);
    const device = (values.device ?? 'cpu') as string;
    if (device !== 'cpu' && device !== 'webgpu') throw new InputError(`--device ${device}: expected cpu or webgpu`);
    const hubUrl = values['hub-url'] as string | undefined;

    const bundleDirs = bundleArgs.map((b) => resolve(b));
    for (let i = 0; i < bundleDirs.length; i++) {
      if (!(await stat(bundleDirs[i]).then((s) => s.isDirectory(), () => false))) throw new InputError(`--bundle ${bundleArgs[i]}: not a folder`);
    }

    let tokens: number[] | undefined;
    let text: string | undefined;
    let textLabel: string;
    if (typeof values.tokens === 'string') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(values.tokens, 'utf8'));
      } catch (e) {
        throw new InputError(`--tokens ${values.tokens}: ${(e as Error).message}`);
      }
      const ids = Array.isArray(parsed) ? parsed : (parsed as { ids?: unknown } | null)?.ids;
      tokens = checkIds(ids, `--tokens ${values.tokens} "ids"`);
      textLabel = `token ids from ${values.tokens}`;
    } else if (typeof values.text === 'string') {
      text = await readFile(values.text, 'utf8').catch(() => {
        throw new InputError(`--text ${values.text}: cannot read the file`);
      });
      textLabel = String(values.text);
    } else if (values['builtin-text']) {
      text = BUILTIN_TEXT;
      textLabel = BUILTIN_TEXT_LABEL;
    } else {
      process.stderr.write('reading WikiText-2 raw test from the Hub…\n');
      text = joinWikiText(await fetchWikiTextRows({ hubUrl, signal: controller.signal }));
      textLabel = 'WikiText-2 raw test';
    }

    const { source: original } = await openCliSource(String(values.model), {
      revision: values.revision as string | undefined,
      hubUrl,
      token: (values.token as string | undefined) ?? process.env.HF_TOKEN,
      signal: controller.signal,
    });
    const bundles = await Promise.all(bundleDirs.map((d) => createNodeFsSource(d)));

    let notice: string | undefined;
    if (device === 'webgpu') {
      try {
        const { createNodeGpuRuntime } = await import('../gpu/node');
        gpu = await createNodeGpuRuntime();
      } catch (e) {
        notice = `WebGPU unavailable (${(e as Error).message}); running on the CPU`;
      }
    }
    let lastStage = '';
    const common = {
      original,
      tokens,
      text,
      textLabel,
      seqlen,
      windows,
      prompt: values.prompt as string | undefined,
      genTokens: gen,
      device: (gpu ? 'webgpu' : 'cpu') as EvalDevice,
      gpu,
      signal: controller.signal,
    };
    if (bundles.length > 1) {
      const cmp = await compareBundles({
        ...common,
        bundles: bundles.map((source, i) => ({ label: bundleArgs[i], source })),
        onProgress: (p) => {
          if (values.json) return;
          const key = `${p.bundle}:${p.stage}`;
          if (key !== lastStage || p.done === p.total) process.stderr.write(`[${p.bundle + 1}/${p.bundles}] ${p.stage} ${p.done}/${p.total}\n`);
          lastStage = key;
        },
      });
      notice ??= cmp.bundles.find((b) => b.result.notice)?.result.notice;
      if (notice) process.stderr.write(`notice: ${notice}\n`);
      if (values['update-card']) for (let i = 0; i < bundles.length; i++) await updateCard(bundleDirs[i], qualityFigures(cmp.bundles[i].result));
      process.stdout.write((values.json ? comparisonJson(cmp) : comparisonReport(cmp)) + '\n');
      await (original as { close?: () => Promise<void> | void }).close?.();
      for (const b of bundles) await b.close();
      return 0;
    }
    const bundle = bundles[0];
    const bundleDir = bundleDirs[0];
    const result = await runQualityCheck({
      ...common,
      bundle,
      onProgress: (p) => {
        if (values.json) return;
        if (p.stage !== lastStage || p.done === p.total) process.stderr.write(`${p.stage} ${p.done}/${p.total}\n`);
        lastStage = p.stage;
      },
    });
    notice ??= result.notice;
    if (notice) process.stderr.write(`notice: ${notice}\n`);
    if (values['update-card']) await updateCard(bundleDir, qualityFigures(result));
    if (values.json) {
      const out: Record<string, unknown> = {
        ppl_original: result.pplOriginal,
        ppl_quantized: result.pplQuantized,
        kl_mean: result.klMean,
        top1_agreement: result.top1Agreement,
        windows: result.windows,
        seqlen: result.seqlen,
        predictions: result.predictions,
        device: result.device as EvalDevice,
      };
      if (result.generation) out.generation = result.generation;
      // Pretty, but id lists on one line each.
      const json = JSON.stringify(out, null, 1).replace(/\[\s+([\d,\s]+?)\s+\]/g, (_m, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`);
      process.stdout.write(json + '\n');
    } else {
      process.stdout.write(report(result) + '\n');
      if (values['update-card']) process.stdout.write(`updated ${join(bundleDir, 'README.md')}\n`);
    }
    await bundle.close();
    await (original as { close?: () => Promise<void> | void }).close?.();
    await bundle.close();
    return 0;
  } catch (e) {
    if (e instanceof InputError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CancelledError) {
      process.stderr.write('cancelled\n');
      return 130;
    }
    process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  } finally {
    gpu?.destroy();
  }
}

main().then((code) => process.exit(code));
