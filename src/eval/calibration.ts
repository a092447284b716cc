/**
 * Calibration / evaluation text for the quality check (SPEC §7): WikiText-2 raw test from
 * the Hub, a text file the person drops, a given string, or pre-tokenized ids (the demo
 * model's eval.tokens.json). The text is tokenized once, then cut into non-overlapping
 * windows of `seqlen` tokens (tail dropped).
 */
import { InputError } from '../core/errors';
import { windows as cutWindows } from './perplexity';
import type { TextTokenizer } from './tokenizer';
import { fetchWikiTextRows, joinWikiText, type WikiTextOptions } from './wikitext';

/** Window lengths the UI offers (the papers use 2048). */
export const SEQLEN_CHOICES = [128, 256, 512, 1024, 2048] as const;
export const SEQLEN_MIN = 128;
export const SEQLEN_MAX = 2048;

export type CalibrationSource =
  | ({ kind: 'wikitext2' } & WikiTextOptions)
  | { kind: 'text'; text: string; name?: string }
  /** A dropped text file (UTF-8). */
  | { kind: 'file'; file: Blob; name?: string }
  | { kind: 'tokens'; ids: number[]; name?: string };

export function describeCalibration(src: CalibrationSource): string {
  switch (src.kind) {
    case 'wikitext2':
      return `WikiText-2 raw ${src.split ?? 'test'}`;
    case 'text':
      return src.name ?? 'text';
    case 'file':
      return src.name ?? ((src.file as Blob & { name?: string }).name || 'dropped file');
    case 'tokens':
      return src.name ?? 'token ids';
  }
}

/** Validate a window length against the UI's range and the model's context. */
export function checkSeqlen(seqlen: number, maxPositions?: number): number {
  if (!Number.isInteger(seqlen) || seqlen < SEQLEN_MIN || seqlen > SEQLEN_MAX) {
    throw new InputError(`seqlen ${seqlen}: expected an integer from ${SEQLEN_MIN} to ${SEQLEN_MAX}`);
  }
  if (maxPositions !== undefined && seqlen > maxPositions) {
    throw new InputError(`seqlen ${seqlen} exceeds the model's max_position_embeddings ${maxPositions}`);
  }
  return seqlen;
}

/** The text of a source ('tokens' has none). */
export async function calibrationText(src: Exclude<CalibrationSource, { kind: 'tokens' }>): Promise<string> {
  switch (src.kind) {
    case 'wikitext2':
      return joinWikiText(await fetchWikiTextRows(src));
    case 'text':
      return src.text;
    case 'file':
      return new TextDecoder('utf-8').decode(await src.file.arrayBuffer());
  }
}

/** Token ids of a source: the whole text tokenized once (BOS per the tokenizer's config). */
export async function calibrationTokens(src: CalibrationSource, tokenizer: TextTokenizer | undefined): Promise<number[]> {
  if (src.kind === 'tokens') return checkIds(src.ids);
  if (!tokenizer) throw new InputError('no tokenizer.json in the model or the bundle: cannot tokenize the calibration text');
  return tokenizer.encode(await calibrationText(src));
}

export function checkIds(ids: unknown, what = 'token ids'): number[] {
  if (!Array.isArray(ids) || ids.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new InputError(`${what}: expected an array of non-negative integers`);
  }
  return ids as number[];
}

/** How many full windows `n` tokens give. */
export function availableWindows(n: number, seqlen: number): number {
  return Math.floor(n / seqlen);
}

/** Non-overlapping windows; `count` undefined = all. Too little text is an input error. */
export function calibrationWindows(ids: ArrayLike<number>, seqlen: number, count?: number): number[][] {
  const have = availableWindows(ids.length, seqlen);
  if (have === 0) throw new InputError(`the calibration text has ${ids.length} tokens, fewer than one window of ${seqlen}`);
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new InputError(`windows ${count}: expected a positive integer`);
  return cutWindows(ids, seqlen, count);
}
