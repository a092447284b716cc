#!/usr/bin/env node
/**
 * eval — the quality check from the command line (the same runQualityCheck as the app):
 *   npm run eval -- --model <dir|org/repo> --bundle <dir> (--text <file> | --tokens <ids.json> | --wikitext)
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
import { createNodeFsSource } from '../sources/node-fs-source-node';
import { openCliSource } from './source';

const USAGE = `usage: npm run eval -- --model <dir|org/repo> --bundle <dir> (--text <file> | --tokens <ids.json> | --wikitext) [options]
  --model DIR|ORG/NAME   the original model (local folder or Hub repo)
  --bundle DIR           the quantized bundle folder
  --text FILE            evaluation text (UTF-8), tokenized once
  --tokens FILE          JSON with an "ids" array (like the demo model's eval.tokens.json)
  --wikitext             WikiText-2 raw test split from the Hub dataset Salesforce/wikitext
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
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' }, bundle: { type: 'string' }, text: { type: 'string' }, tokens: { type: 'string' },
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
    if (!values.model || !values.bundle) throw new InputError('--model and --bundle are required');
    const inputs = [values.text, values.tokens, values.wikitext].filter((v) => v !== undefined && v !== false).length;
    if (inputs !== 1) throw new InputError('give exactly one of --text FILE, --tokens FILE or --wikitext');
    const seqlen = checkSeqlen(intArg(values.seqlen as string | undefined, 'seqlen', 256, SEQLEN_MIN, SEQLEN_MAX));
    const windows = values.windows === 'all' ? undefined : intArg(values.windows as string | undefined, 'windows', 8, 1, 1_000_000);
    const gen = intArg(values.gen as string | undefined, 'gen', 20, 0, 4096);
    const device = (values.device ?? 'cpu') as string;
    if (device !== 'cpu' && device !== 'webgpu') throw new InputError(`--device ${device}: expected cpu or webgpu`);
    const hubUrl = values['hub-url'] as string | undefined;

    const bundleDir = resolve(String(values.bundle));
    if (!(await stat(bundleDir).then((s) => s.isDirectory(), () => false))) throw new InputError(`--bundle ${values.bundle}: not a folder`);

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
    const bundle = await createNodeFsSource(bundleDir);

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
    const result = await runQualityCheck({
      original,
      bundle,
      tokens,
      text,
      textLabel,
      seqlen,
      windows,
      prompt: values.prompt as string | undefined,
      genTokens: gen,
      device: gpu ? 'webgpu' : 'cpu',
      gpu,
      signal: controller.signal,
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
