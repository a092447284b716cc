import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError } from '../core/errors';
import { parseDatasetSpec, type CalibrationSetSource } from '../eval/calibration-set';

/**
 * `--calib <calib.json | text file | hub dataset spec>` → a calibration source, read now so an
 * unreadable or malformed file fails before any model is opened. A file that exists is read:
 * `.json` is a seed-format calib.json, or a token stream `{"ids": [...]}` (like the demo's
 * eval.tokens.json); anything else is UTF-8 text. Otherwise the argument must be a dataset spec
 * (`wikitext-2-raw-v1`, `org/name:config/split`).
 */
export async function readCalibrationArg(arg: string, opts: { hubUrl?: string; accessToken?: string; signal?: AbortSignal } = {}): Promise<CalibrationSetSource> {
  const isFile = await stat(arg).then((s) => s.isFile(), () => false);
  if (!isFile) {
    if (/\.(json|txt|text|md)$/i.test(arg) || arg.startsWith('.') || arg.startsWith('/')) {
      throw new InputError(`--calib ${arg}: cannot read the file (no such file)`, { file: arg });
    }
    return { ...parseDatasetSpec(arg), hubUrl: opts.hubUrl, accessToken: opts.accessToken, signal: opts.signal };
  }
  const text = await readFile(arg, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`--calib ${arg}: cannot read the file (${e.code ?? e.message})`, { file: arg });
  });
  const name = basename(arg);
  if (!/\.json$/i.test(arg)) return { kind: 'text', text, name };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`--calib ${arg}: not valid JSON (${(e as Error).message})`, { file: arg });
  }
  if (v && typeof v === 'object' && !Array.isArray(v) && 'ids' in v) {
    const ids = (v as { ids: unknown }).ids;
    if (!Array.isArray(ids)) throw new InputError(`--calib ${arg}: "ids" must be an array of token ids`, { file: arg });
    return { kind: 'tokens', ids: ids as number[], name };
  }
  return { kind: 'calib-json', json: text, name };
}
