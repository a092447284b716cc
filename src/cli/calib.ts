#!/usr/bin/env node
/**
 * calib — writes a seed-format calibration set (ANEMLL's calib.json) for a model:
 *   npm run calib -- --model <dir|org/repo> --out calib.json [--nsamples 128] [--seqlen 512]
 *     [--seed 0] [--text FILE | --dataset wikitext-2-raw-v1] [--hub-url URL] [--revision REV]
 * Without --text or --dataset it samples the WikiText-2 raw train split from the Hub, as the
 * seed's create_simple_calib.py does. Everything is checked before the file is written; the
 * file appears whole or not at all.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError, InputError } from '../core/errors';
import {
  buildCalibrationSet,
  CALIB_NSAMPLES,
  CALIB_NSAMPLES_MAX,
  CALIB_SEED,
  CALIB_SEQLEN,
  CALIB_SEQLEN_MAX,
  CALIB_SEQLEN_MIN,
  parseDatasetSpec,
  readCalibrationModelInfo,
  serializeCalibJson,
  type CalibrationSetSource,
} from '../eval/calibration-set';
import { WIKITEXT2_RAW } from '../eval/wikitext';
import { openCliSource } from './source';

const USAGE = `usage: npm run calib -- --model <dir|org/repo> --out calib.json [options]
  --model DIR|ORG/NAME   the model whose tokenizer and vocabulary are used
  --out FILE             where to write the calibration set ([{"input_ids": [...], "text": "..."}])
  --text FILE            sample from this UTF-8 text (tokenized once)
  --dataset SPEC         sample from a Hub text dataset: [org/name:]config[/split]   [${WIKITEXT2_RAW}, split train]
  --nsamples N           samples                                                     [${CALIB_NSAMPLES}]
  --seqlen L             tokens per sample                                           [${CALIB_SEQLEN}]
  --seed S               seed of the random start offsets                            [${CALIB_SEED}]
  --revision REV         Hub revision of --model                                     [main]
  --hub-url URL          Hub or mirror address (also for --dataset)
  --token hf_...         Hub token (or env HF_TOKEN)`;

function intArg(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InputError(`--${name} ${String(v)}: expected an integer from ${min} to ${max}`);
  return n;
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' }, out: { type: 'string' }, text: { type: 'string' }, dataset: { type: 'string' },
        nsamples: { type: 'string' }, seqlen: { type: 'string' }, seed: { type: 'string' }, revision: { type: 'string' },
        'hub-url': { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' },
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
  try {
    if (!values.model || !values.out) throw new InputError('--model and --out are required');
    if (values.text !== undefined && values.dataset !== undefined) throw new InputError('give at most one of --text FILE or --dataset SPEC');
    const nsamples = intArg(values.nsamples, 'nsamples', CALIB_NSAMPLES, 1, CALIB_NSAMPLES_MAX);
    const seqlen = intArg(values.seqlen, 'seqlen', CALIB_SEQLEN, CALIB_SEQLEN_MIN, CALIB_SEQLEN_MAX);
    const seed = intArg(values.seed, 'seed', CALIB_SEED, 0, 0xffffffff);
    const hubUrl = values['hub-url'] as string | undefined;
    const out = resolve(String(values.out));
    if (!(await stat(dirname(out)).then((s) => s.isDirectory(), () => false))) throw new InputError(`--out ${values.out}: the folder ${dirname(out)} does not exist`);
    if (await stat(out).then((s) => s.isDirectory(), () => false)) throw new InputError(`--out ${values.out}: is a folder; give a file name such as calib.json`);

    // The input first (a bad file fails before any network access), then the model.
    let src: CalibrationSetSource;
    if (typeof values.text === 'string') {
      const path = values.text;
      const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new InputError(`--text ${path}: cannot read the file (${e.code ?? e.message})`, { file: path });
      });
      src = { kind: 'text', text, name: path };
    } else {
      src = { ...parseDatasetSpec(typeof values.dataset === 'string' ? values.dataset : WIKITEXT2_RAW), hubUrl, signal: controller.signal };
    }

    const { source } = await openCliSource(String(values.model), {
      revision: values.revision as string | undefined,
      hubUrl,
      token: (values.token as string | undefined) ?? process.env.HF_TOKEN,
      signal: controller.signal,
    });
    const info = await readCalibrationModelInfo(source, controller.signal);
    if (src.kind === 'wikitext2') process.stderr.write(`reading ${src.repo} ${src.config} ${src.split} from the Hub…\n`);
    const set = await buildCalibrationSet(src, { ...info, nsamples, seqlen, seed, signal: controller.signal });
    await (source as { close?: () => Promise<void> | void }).close?.();

    const tmp = `${out}.partial`;
    try {
      await writeFile(tmp, serializeCalibJson(set.samples, info.tokenizer));
      await rename(tmp, out);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new InputError(`--out ${values.out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: out });
    }
    process.stdout.write(
      `wrote ${out}: ${set.nsamples} samples × ${set.seqlen} tokens from ${set.source} (${set.streamTokens} tokens, seed ${set.seed})\n` +
        `sha256 of the token ids (int32 LE): ${set.sha256}\n`,
    );
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
  }
}

main().then((code) => process.exit(code));
