#!/usr/bin/env node
/**
 * quantize — the Node CLI on the same core as the app:
 *   npm run quantize -- --model <dir|org/repo> --out <dir> [--bits 4|8|16] [--scheme per_tensor|sp]
 *     [--rotation full|block|none] [--block-size 64] [--clip absmax|mse] [--seed 0]
 *     [--quantize-embeddings true|false] [--dtype f16|f32] [--backend cpu|webgpu]
 */
import { parseArgs } from 'node:util';
import { dirname, resolve } from 'node:path';
import { rmSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { parseSettings } from '../core/settings';
import { InputError, CancelledError, EnvironmentError } from '../core/errors';
import { runPipelineWithRestarts } from '../core/pipeline/restart';
import { formatLayerSummary } from '../core/pipeline/report';
import { reportToJson } from '../core/pipeline/report-json';
import { formatRate, RunMeter } from '../core/progress';
import { assertRunnable, preflight } from '../core/pipeline/preflight';
import { openCliSource } from './source';
import { openCliBackend } from './backend';
import { createFsSink, fsFailure } from '../sinks/fs-sink-node';
import { userFacingMessage } from './errors';
import { isInside, realpathLoose } from './paths';

const USAGE = `usage: npm run quantize -- --model <dir|org/repo> --out <dir> [options]
  --bits 4|8|16                 weight bits (16 = rotation/fusion only)        [4]
  --scheme per_tensor|sp        one step per tensor, or per output row (SP)     [sp]
  --rotation full|block|none    residual Hadamard rotation                      [full]
  --block-size N                block size for --rotation block                 [64]
  --clip absmax|mse             step from max|W|, or MSE-optimal clip           [mse]
  --seed N                      seed of the random Hadamard signs               [0]
  --quantize-embeddings BOOL    quantize model.embed_tokens too                 [true]
  --dtype f16|f32               stored dtype (f32 for exact checks)             [f16]
  --backend cpu|webgpu          where the math runs                             [cpu]
  --revision REV                Hub revision (with a repo id)                   [main]
  --hub-url URL                 Hub or mirror address                           [https://huggingface.co]
  --token hf_...                Hub token (or env HF_TOKEN); never written anywhere
  --max-shard-size BYTES        shard model.safetensors above this size         [2000000000]
  --report FILE                 also write the per-tensor report as JSON
  --overwrite                   replace an existing --out folder
  --quiet                       no per-tensor progress lines`;

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' }, out: { type: 'string' }, bits: { type: 'string' }, scheme: { type: 'string' },
        rotation: { type: 'string' }, 'block-size': { type: 'string' }, clip: { type: 'string' }, seed: { type: 'string' },
        'quantize-embeddings': { type: 'string' }, dtype: { type: 'string' }, backend: { type: 'string' },
        revision: { type: 'string' }, 'hub-url': { type: 'string' }, token: { type: 'string' },
        'max-shard-size': { type: 'string' }, report: { type: 'string' }, overwrite: { type: 'boolean' },
        quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  if (!values.model || !values.out) { process.stderr.write(`error: --model and --out are required\n${USAGE}\n`); return 2; }

  // Ctrl-C (SIGINT) and SIGTERM cancel the run: the pipeline stops at its next step and the
  // partial folder is removed. A second signal removes it at once and exits.
  const controller = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  let partialDir: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      if (partialDir) rmSync(partialDir, { recursive: true, force: true });
      process.stderr.write(`${sig} again: stopped at once${partialDir ? `, removed ${partialDir}` : ''}\n`);
      process.exit(sig === 'SIGTERM' ? 143 : 130);
    }
    signalled = sig;
    process.stderr.write(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: cancelling…\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const settings = parseSettings({
      bits: values.bits, scheme: values.scheme, rotation: values.rotation, blockSize: values['block-size'],
      clip: values.clip, seed: values.seed, quantizeEmbeddings: values['quantize-embeddings'], dtype: values.dtype,
    });
    const maxShardBytes = values['max-shard-size'] !== undefined ? Number(values['max-shard-size']) : undefined;
    if (maxShardBytes !== undefined && !(Number.isInteger(maxShardBytes) && maxShardBytes > 0)) {
      throw new InputError(`--max-shard-size ${String(values['max-shard-size'])}: expected a positive integer number of bytes`);
    }
    const outDir = resolve(String(values.out));
    const reportPath = values.report !== undefined ? resolve(String(values.report)) : undefined;
    if (reportPath !== undefined) await checkReportPath(reportPath, outDir);
    const modelArg = String(values.model);
    const notice = (msg: string): void => { process.stderr.write(`notice: ${msg}\n`); };
    const { source, target, localRoots } = await openCliSource(modelArg, {
      revision: values.revision as string | undefined,
      hubUrl: values['hub-url'] as string | undefined,
      token: (values.token as string | undefined) ?? process.env.HF_TOKEN,
      signal: controller.signal,
      onNotice: notice,
    });
    // The bundle must never replace, or be written into, the model it is made from.
    const outReal = await realpathLoose(outDir);
    for (const root of localRoots) {
      const how = outReal === root ? 'is' : isInside(root, outReal) ? 'lies inside' : isInside(outReal, root) ? 'contains' : undefined;
      if (how) {
        throw new InputError(`--out ${outDir} ${how} the model folder ${root}; write the bundle to a separate folder${values.overwrite ? ' (with --overwrite this would delete the model)' : ''}`);
      }
      if (reportPath !== undefined && isInside(root, await realpathLoose(reportPath))) {
        throw new InputError(`--report ${reportPath} lies inside the model folder ${root}; write the report elsewhere`);
      }
    }
    for (const skipped of (source as { skipped?: string[] }).skipped ?? []) process.stderr.write(`warning: ${skipped}\n`);
    // Refuse settings the model cannot run with before the output folder is touched.
    const pf = await preflight(source, settings, { signal: controller.signal });
    assertRunnable(pf);
    const backend = await openCliBackend((values.backend as string | undefined) ?? 'cpu', notice);
    const quiet = values.quiet === true;
    process.stderr.write(
      `${source.label} → ${outDir}\nbackend: ${backend.description}\nsettings: ${JSON.stringify(settings)}\n` +
        `model: ${pf.tensorCount} tensors, ${(pf.tensorBytes / 1e6).toFixed(1)} MB; ${pf.quantizedCount} to quantize; bundle ≈ ${(pf.outputBytes / 1e6).toFixed(1)} MB` +
        `${pf.hadamard ? `; residual rotation ${pf.hadamard}` : ''}\n`,
    );
    let lastIndex = -1;
    const meter = new RunMeter();
    const makeSink = async () => {
      const sink = await createFsSink({ out: outDir, overwrite: values.overwrite === true, onNotice: notice });
      partialDir = sink.partialDir;
      return sink;
    };
    const restartNotice = (err: Error, attempt: number): void => { process.stderr.write(`notice: ${err.message}; starting over (restart ${attempt})\n`); };
    const result = await runPipelineWithRestarts({
      source, settings, backend, target, modelArg, maxShardBytes, signal: controller.signal,
      onProgress: (e) => {
        const est = meter.update(e);
        if (quiet || e.phase !== 'read' || e.tensorIndex === lastIndex) return;
        lastIndex = e.tensorIndex;
        const mb = (n: number): string => (n / 1e6).toFixed(1);
        const secs = e.elapsedMs / 1000;
        process.stderr.write(
          `[${e.tensorIndex + 1}/${e.tensorCount}] ${e.tensorName}  read ${mb(e.bytesRead)}/${mb(e.bytesToRead)} MB (${formatRate(est.readBytesPerSec)})  ` +
            `written ${mb(e.bytesWritten)} MB  ${secs.toFixed(1)} s${est.etaSeconds !== null ? `, ETA ${est.etaSeconds.toFixed(0)} s` : ''}\n`,
        );
      },
    }, makeSink, 2, restartNotice);
    partialDir = undefined;
    await backend.dispose();
    await (source as { close?: () => Promise<void> | void }).close?.();
    process.stdout.write(`\n${formatLayerSummary(result.reports)}\n\n`);
    process.stdout.write(
      `quantized ${result.plan.quantizedCount} tensors (${settings.bits}-bit ${settings.scheme}/${settings.clip}, rotation ${settings.rotation}) ` +
        `in ${(result.elapsedMs / 1000).toFixed(2)} s on ${result.backend}\n` +
        `wrote ${result.files.length} files, ${(result.bytesWritten / 1e6).toFixed(2)} MB, to ${outDir}\n`,
    );
    if (reportPath !== undefined) {
      try {
        await writeFile(reportPath, JSON.stringify(reportToJson(result), null, 1));
      } catch (e) {
        const err = fsFailure(e, 'write the report', reportPath);
        if (err instanceof EnvironmentError) throw new EnvironmentError(`${err.message}; the bundle in ${outDir} is complete`, err);
        throw err;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof CancelledError || signalled) {
      process.stderr.write('cancelled; no bundle was written\n');
      return signalled === 'SIGTERM' ? 143 : 130;
    }
    const message = userFacingMessage(e);
    if (message !== undefined) { process.stderr.write(`error: ${message}\n`); return 2; }
    process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

/** Refuse a --report path that would land in the bundle (and overwrite a verified file) or cannot be written. */
async function checkReportPath(reportPath: string, outDir: string): Promise<void> {
  const real = await realpathLoose(reportPath);
  if (isInside(outDir, reportPath) || isInside(await realpathLoose(outDir), real)) {
    throw new InputError(`--report ${reportPath} lies inside the bundle folder ${outDir}; the bundle holds only verified files listed in its manifest, so write the report elsewhere`);
  }
  const st = await stat(reportPath).catch(() => undefined);
  if (st?.isDirectory()) throw new InputError(`--report ${reportPath} is a folder; expected a file path such as report.json`);
  const parent = await stat(dirname(reportPath)).catch(() => undefined);
  if (!parent?.isDirectory()) {
    throw new EnvironmentError(`cannot write the report ${reportPath}: the folder ${dirname(reportPath)} does not exist; create it or choose another --report path`, { path: reportPath });
  }
}

main().then((code) => process.exit(code));
