#!/usr/bin/env node
/**
 * quantize — the Node CLI on the same core as the app:
 *   npm run quantize -- --model <dir|org/repo> --out <dir> [--bits 4|8|16] [--scheme per_tensor|sp]
 *     [--rotation full|block|none] [--block-size 64] [--clip absmax|mse] [--seed 0]
 *     [--quantize-embeddings true|false] [--dtype f16|f32] [--backend cpu|webgpu]
 *     [--method rtn|gptq] [--calib <calib.json | text file | dataset | demo>] [--calib-samples 128]
 *     [--calib-seqlen 512] [--calib-seed 0] [--act-order true|false] [--damp 0.01]
 */
import { calibrationForwardFor } from '../eval/calibration-forward-webgpu';
import { parseArgs } from 'node:util';
import { basename, dirname, resolve } from 'node:path';
import { rmSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { parseSettings } from '../core/settings';
import { InputError, CancelledError, EnvironmentError } from '../core/errors';
import { runPipelineWithRestarts } from '../core/pipeline/restart';
import { formatCalibSummary, formatLayerSummary } from '../core/pipeline/report';
import { calibrationRecord, type PipelineCalibration } from '../core/pipeline/calibration';
import { CALIBRATION_DEMO, parseCalibrationSpec, usesCalibration, type CalibrationSpec } from '../core/link';
import { describeGptqCost, gptqCost, measureHostFlops } from '../core/gptq-cost';
import type { CalibrationSetSource } from '../eval/calibration-set';
import { demoCalibrationSource, pipelineCalibrationFrom } from '../eval/gptq-calibration';
import { readCalibrationArg } from './calib-source';
import { reportToJson } from '../core/pipeline/report-json';
import { formatRate, RunMeter } from '../core/progress';
import { assertRunnable, preflight } from '../core/pipeline/preflight';
import { openCliSource } from './source';
import { openCliBackend } from './backend';
import { createFsSink, fsFailure } from '../sinks/fs-sink-node';
import { fileSpool } from '../sinks/file-spool-node';
import { userFacingMessage } from './errors';
import { isInside, realpathLoose } from './paths';
import { normalizeSweepArgv, parseSweepFlags, readSweepEvalText, runSweepCommand, sweepOnlyFlags, SWEEP_USAGE, type ParsedSweep } from './sweep';
import { checkSweep, pointSettings } from '../eval/sweep';
import { gridPoints } from '../eval/sweep-grid';

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
  --method rtn|gptq             round-to-nearest, or GPTQ with calibration data [gptq with --calib, else rtn]
  --calib SRC                   calibration for GPTQ: a calib.json, a text file, a Hub dataset
                                (wikitext-2-raw-v1 = WikiText-2 raw train, org/name:config/split),
                                or demo (a demo folder's calib.tokens.json / calib.json / calib.txt)
  --calib-samples N             calibration samples drawn from the source      [128]
  --calib-seqlen L              tokens per sample                               [512]
  --calib-seed N                seed of the sample offsets                      [0]
  --act-order BOOL              GPTQ: columns in descending Hessian-diagonal order [true]
  --damp F                      GPTQ: dampening, fraction of the mean diagonal  [0.01]
  --codebook uniform|learned    projections' codebook: integer grid, or 2^b entries fitted per tensor [uniform]
  --input-scales uniform|fitted projections' input_scales: one value, or a scale per input column fitted
                                with the row scales (weighted by the Hessian diagonal when --calib is
                                given, also with --method rtn) [uniform]
  --w8-budget F                 keep the projections most sensitive on calibration data at 8 bits,
                                at most F (or N%) of the projection parameters (needs --calib)  [0]
  --bits-override SPEC          per-tensor bits, e.g. 'down_proj=8,layers.0.*=8' (16 = unquantized)
  --revision REV                Hub revision (with a repo id)                   [main]
  --hub-url URL                 Hub or mirror address                           [https://huggingface.co]
  --token hf_...                Hub token (or env HF_TOKEN); never written anywhere
  --max-shard-size BYTES        shard model.safetensors above this size         [2000000000]
  --tile-mb N                   process tensors above N MiB of f32 in tiles of about that
                                size (memory; the bundle's bytes do not depend on it)  [32]
  --report FILE                 also write the per-tensor report as JSON
  --overwrite                   replace an existing --out folder
  --quiet                       no per-tensor progress lines
   or: npm run quantize -- --model <dir|org/repo> --sweep [GRID] [--calib SRC] [--pick best|N --out <dir>] [options]
${SWEEP_USAGE}`;

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' }, out: { type: 'string' }, bits: { type: 'string' }, scheme: { type: 'string' },
        rotation: { type: 'string' }, 'block-size': { type: 'string' }, clip: { type: 'string' }, seed: { type: 'string' },
        'quantize-embeddings': { type: 'string' }, dtype: { type: 'string' }, backend: { type: 'string' },
        revision: { type: 'string' }, 'hub-url': { type: 'string' }, token: { type: 'string' },
        'max-shard-size': { type: 'string' }, 'tile-mb': { type: 'string' }, report: { type: 'string' }, overwrite: { type: 'boolean' },
        quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        method: { type: 'string' }, calib: { type: 'string' }, 'calib-samples': { type: 'string' }, 'calib-seqlen': { type: 'string' },
        'calib-seed': { type: 'string' }, 'act-order': { type: 'string' }, damp: { type: 'string' },
        codebook: { type: 'string' }, 'input-scales': { type: 'string' }, 'w8-budget': { type: 'string' }, 'bits-override': { type: 'string' },
        sweep: { type: 'string' }, 'sweep-json': { type: 'string' }, pick: { type: 'string' }, 'eval-text': { type: 'string' },
        'eval-tokens': { type: 'string' }, 'eval-seqlen': { type: 'string' }, 'eval-windows': { type: 'string' },
      },
      args: normalizeSweepArgv(process.argv.slice(2)),
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const sweepFlags = {
    sweep: values.sweep as string | undefined, sweepJson: values['sweep-json'] as string | undefined, pick: values.pick as string | undefined,
    evalText: values['eval-text'] as string | undefined, evalTokens: values['eval-tokens'] as string | undefined,
    evalSeqlen: values['eval-seqlen'] as string | undefined, evalWindows: values['eval-windows'] as string | undefined,
  };
  const sweeping = values.sweep !== undefined;
  if (!sweeping && sweepOnlyFlags(sweepFlags).length > 0) {
    process.stderr.write(`error: ${sweepOnlyFlags(sweepFlags).join(', ')} only work with --sweep\n`);
    return 2;
  }
  if (!values.model || (!values.out && !sweeping)) { process.stderr.write(`error: --model and --out are required\n${USAGE}\n`); return 2; }

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
      // Calibration data means GPTQ unless the method is named.
      method: values.method ?? (values.calib !== undefined ? 'gptq' : undefined), actOrder: values['act-order'], damp: values.damp,
      codebook: values.codebook, inputScales: values['input-scales'], w8Budget: values['w8-budget'], bitsOverride: values['bits-override'],
    });
    // The advisor: the grid, the pick and the evaluation flags are checked before anything is read.
    let sweep: ParsedSweep | undefined;
    if (sweeping) sweep = parseSweepFlags(sweepFlags, { method: values.method, codebook: values.codebook, w8Budget: values['w8-budget'], out: values.out });
    if (sweep) checkSweep(settings, sweep.grid, values.calib !== undefined);
    const needsCalibration = sweep ? gridPoints(sweep.grid).some((p) => usesCalibration(pointSettings(settings, p))) : usesCalibration(settings);
    const sweepEval = sweep ? await readSweepEvalText(sweep) : undefined;
    const calibArg = values.calib as string | undefined;
    const calibFlags = (['calib-samples', 'calib-seqlen', 'calib-seed', 'act-order', 'damp'] as const).filter((k) => values[k] !== undefined);
    let calibSpec: CalibrationSpec | undefined;
    let calibSource: CalibrationSetSource | undefined;
    // Fitted input scales take calibration when it is given, even with --method rtn.
    if (needsCalibration || (settings.inputScales === 'fitted' && settings.bits !== 16 && calibArg !== undefined)) {
      if (calibArg === undefined) {
        if (sweep) throw new InputError('--sweep: the grid has GPTQ or W8-budget points, which need calibration data: give --calib (a calib.json, a text file, a Hub dataset or demo), or a grid of RTN points with w8=0');
        throw new InputError('--method gptq needs calibration data: give --calib with a calib.json, a text file, a Hub dataset such as wikitext-2-raw-v1, or demo (a demo folder\'s built-in calibration)');
      }
      const counts = { samples: values['calib-samples'], seqlen: values['calib-seqlen'], seed: values['calib-seed'] };
      parseCalibrationSpec({ source: CALIBRATION_DEMO, ...counts }); // counts checked before anything is read
      if (calibArg.trim() === CALIBRATION_DEMO) {
        calibSpec = parseCalibrationSpec({ source: CALIBRATION_DEMO, ...counts });
      } else {
        // A file is read now: unreadable or malformed calibration fails before the model is opened.
        calibSource = await readCalibrationArg(calibArg, {
          hubUrl: values['hub-url'] as string | undefined, accessToken: (values.token as string | undefined) ?? process.env.HF_TOKEN, signal: controller.signal,
        });
        calibSpec = parseCalibrationSpec({ source: calibSource.kind === 'wikitext2' ? calibArg.trim() : `file:${basename(calibArg)}`, ...counts });
      }
    } else if (calibArg !== undefined || calibFlags.length > 0) {
      process.stderr.write(`notice: ${[calibArg !== undefined ? '--calib' : '', ...calibFlags.map((f) => `--${f}`)].filter(Boolean).join(', ')} not used: ${settings.bits === 16 ? '--bits 16 quantizes nothing' : sweep ? 'the grid has no GPTQ or W8 points' : '--method rtn needs no calibration'}\n`);
    }
    const maxShardBytes = values['max-shard-size'] !== undefined ? Number(values['max-shard-size']) : undefined;
    if (maxShardBytes !== undefined && !(Number.isInteger(maxShardBytes) && maxShardBytes > 0)) {
      throw new InputError(`--max-shard-size ${String(values['max-shard-size'])}: expected a positive integer number of bytes`);
    }
    const tileMb = values['tile-mb'] !== undefined ? Number(values['tile-mb']) : undefined;
    if (tileMb !== undefined && !(Number.isFinite(tileMb) && tileMb > 0)) {
      throw new InputError(`--tile-mb ${String(values['tile-mb'])}: expected a positive number of MiB`);
    }
    const tileBytes = tileMb !== undefined ? Math.max(1, Math.round(tileMb * 2 ** 20)) : undefined;
    const outDir = values.out !== undefined ? resolve(String(values.out)) : undefined;
    const reportPath = values.report !== undefined ? resolve(String(values.report)) : undefined;
    if (reportPath !== undefined && sweep) throw new InputError('--report is for a single run; with --sweep use --sweep-json FILE');
    if (reportPath !== undefined && outDir !== undefined) await checkReportPath(reportPath, outDir);
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
    const outReal = outDir !== undefined ? await realpathLoose(outDir) : undefined;
    for (const root of localRoots) {
      const how = outReal === undefined ? undefined : outReal === root ? 'is' : isInside(root, outReal) ? 'lies inside' : isInside(outReal, root) ? 'contains' : undefined;
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
    const backendKind = (values.backend as string | undefined) ?? 'cpu';
    let calibration: PipelineCalibration | undefined;
    let calibSize: { samples: number; tokens: number } | undefined;
    if (calibSpec) {
      // The calibration set, with the model's tokenizer, before any weight is read.
      const src = calibSource ?? await demoCalibrationSource(source, target.model, undefined, controller.signal);
      // The forward pass is bound to the backend once it is open (below).
      const built = await pipelineCalibrationFrom(src, source, calibSpec, undefined, controller.signal);
      calibration = built.calibration;
      const set = built.set;
      const rec = calibrationRecord(calibration);
      calibSize = { samples: set.nsamples, tokens: rec.tokens };
      process.stderr.write(
        `calibration: ${set.source}, ${set.nsamples} × ${set.seqlen} tokens` +
          `${set.origin === 'sampled' ? ` (windows of a ${set.streamTokens}-token stream, seed ${set.seed})` : set.uniform ? ' (calib.json samples as given)' : ` (calib.json samples as given, ${rec.tokens} tokens)`}` +
          `, token ids sha256 ${set.sha256}\n`,
      );
      const cost = gptqCost(pf.config, set.nsamples, rec.tokens / set.nsamples);
      let when = '';
      if (sweep) {
        // The sweep prints its own estimate (per GPTQ point, and how many there are).
      } else if (backendKind === 'cpu') {
        const flops = measureHostFlops();
        when = `; on the CPU path at least ${formatSeconds(cost.total / flops)} (this thread's best on the Hessian kernel just now: ≈ ${(flops / 1e9).toFixed(1)} GFLOP/s; the whole run is slower)`;
      }
      if (!sweep) process.stderr.write(
        `GPTQ cost ${describeGptqCost(cost)}${when}.\n` +
          `  (the largest Hessian is ${mbText(cost.largestHessianBytes)}; fewer tokens (--calib-samples, --calib-seqlen) cut the forward and Hessian parts proportionally)\n`,
      );
    }
    const backend = await openCliBackend(backendKind, notice);
    // On WebGPU the calibration forward runs on the backend's device (its Hessian and GPTQ kernels too).
    if (calibration) calibration = { ...calibration, forward: calibrationForwardFor(backend) };
    const quiet = values.quiet === true;
    if (sweep) {
      process.stderr.write(`${source.label}: settings sweep\nbackend: ${backend.description}\n`);
      const code = await runSweepCommand({
        parsed: sweep, evalText: sweepEval!, source, target, modelArg, settings, backend, backendKind, config: pf.config, calibration,
        calibSamples: calibSize?.samples, calibTokens: calibSize?.tokens, maxShardBytes, signal: controller.signal, quiet, outDir,
        makeSink: outDir === undefined ? undefined : async () => {
          const sink = await createFsSink({ out: outDir, overwrite: values.overwrite === true, onNotice: notice });
          partialDir = sink.partialDir;
          return sink;
        },
        out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t),
      });
      partialDir = undefined;
      await backend.dispose();
      await (source as { close?: () => Promise<void> | void }).close?.();
      return code;
    }
    if (outDir === undefined) throw new InputError('--out is required');
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
    let lastMessage = '';
    const result = await runPipelineWithRestarts({
      source, settings, backend, target, modelArg, maxShardBytes, tileBytes, spool: fileSpool(), signal: controller.signal, calibration,
      onProgress: (e) => {
        const est = meter.update(e);
        if (!quiet && (e.phase === 'calibrate' || e.phase === 'gptq') && e.message && e.message !== lastMessage) {
          lastMessage = e.message;
          process.stderr.write(`  ${e.phase === 'gptq' ? 'gptq' : 'calib'}  ${e.message}  ${(e.elapsedMs / 1000).toFixed(1)} s\n`);
          return;
        }
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
    const calibSummary = formatCalibSummary(result.reports);
    if (calibSummary) process.stdout.write(`${calibSummary}\n\n`);
    process.stdout.write(
      `quantized ${result.plan.quantizedCount} tensors (${settings.bits}-bit ${settings.scheme}/${settings.clip}, rotation ${settings.rotation}${calibration ? (settings.method === 'gptq' ? ', GPTQ' : ', calibrated input scales') : ''}) ` +
        `in ${(result.elapsedMs / 1000).toFixed(2)} s on ${result.backend}\n` +
        `wrote ${result.files.length} files, ${(result.bytesWritten / 1e6).toFixed(2)} MB, to ${outDir}\n`,
    );
    if (reportPath !== undefined) {
      try {
        const extra = { method: usesCalibration(settings) ? 'gptq' : settings.bits === 16 ? null : 'rtn', calibration: calibration ? { ...calibrationRecord(calibration), spec: calibSpec } : null };
        await writeFile(reportPath, JSON.stringify({ ...(reportToJson(result) as object), ...extra }, null, 1));
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

function mbText(n: number): string {
  return n >= 1e8 ? `${(n / 1e6).toFixed(0)} MB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
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
