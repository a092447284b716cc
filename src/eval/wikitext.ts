/**
 * WikiText-2 (raw) from the Hub dataset `Salesforce/wikitext`, read from its parquet file with
 * hyparquet over HTTP range reads (@huggingface/hub's lazy Blob: each `slice().arrayBuffer()`
 * is one range request), so only the footer and the `text` column chunk are transferred.
 * `hubUrl` and `fetch` are injectable (tests use a local mock hub).
 */
import { downloadFile } from '@huggingface/hub';
import { parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { CancelledError, InputError } from '../core/errors';

export const WIKITEXT_REPO = 'Salesforce/wikitext';
export const WIKITEXT2_RAW = 'wikitext-2-raw-v1';

export interface WikiTextOptions {
  /** Dataset config folder. Default `wikitext-2-raw-v1`. */
  config?: string;
  /** Default `test` (the split every paper reports). */
  split?: 'test' | 'validation' | 'train';
  /** Parquet path inside the repo; default `<config>/<split>-00000-of-00001.parquet`. */
  path?: string;
  repo?: string;
  revision?: string;
  hubUrl?: string;
  fetch?: typeof fetch;
  accessToken?: string;
  signal?: AbortSignal;
}

export function wikitextParquetPath(config = WIKITEXT2_RAW, split: WikiTextOptions['split'] = 'test'): string {
  return `${config}/${split}-00000-of-00001.parquet`;
}

/** hyparquet's AsyncBuffer over a Blob: every slice becomes a (range) read of the blob. */
export function blobAsyncBuffer(blob: Blob): AsyncBuffer {
  return {
    byteLength: blob.size,
    slice: (start: number, end?: number) => blob.slice(start, end ?? blob.size).arrayBuffer(),
  };
}

/** Rows of one string column of a parquet file (nulls become empty strings). */
export async function readParquetTextColumn(file: AsyncBuffer, column = 'text'): Promise<string[]> {
  const rows = await parquetReadObjects({ file, columns: [column] });
  return rows.map((r, i) => {
    const v = r[column];
    if (v === null || v === undefined) return '';
    if (typeof v !== 'string') throw new InputError(`parquet column ${column}, row ${i}: expected a string, found ${typeof v}`);
    return v;
  });
}

/** The split's `text` rows, in order. */
export async function fetchWikiTextRows(opts: WikiTextOptions = {}): Promise<string[]> {
  const { signal } = opts;
  const base = opts.fetch ?? globalThis.fetch;
  // @huggingface/hub has no AbortSignal parameter: cancellation goes through fetch.
  const fetchFn: typeof fetch = (input, init) => {
    if (signal?.aborted) return Promise.reject(new CancelledError());
    return base(input, { ...init, signal });
  };
  const path = opts.path ?? wikitextParquetPath(opts.config, opts.split);
  const repo = opts.repo ?? WIKITEXT_REPO;
  let blob: Blob | null;
  try {
    blob = await downloadFile({
      repo: { type: 'dataset', name: repo },
      path,
      revision: opts.revision,
      hubUrl: opts.hubUrl,
      fetch: fetchFn,
      accessToken: opts.accessToken,
      xet: false,
    });
  } catch (e) {
    if (signal?.aborted) throw new CancelledError();
    throw new InputError(`could not open ${path} of dataset ${repo}: ${(e as Error).message}`, { file: path });
  }
  if (!blob) throw new InputError(`dataset ${repo} has no file ${path}`, { file: path });
  try {
    return await readParquetTextColumn(blobAsyncBuffer(blob));
  } catch (e) {
    if (signal?.aborted) throw new CancelledError();
    if (e instanceof InputError) throw e;
    throw new InputError(`could not read ${path} of dataset ${repo} as parquet: ${(e as Error).message}`, { file: path });
  }
}

/** SPEC §7 / QuaRot protocol: the split's rows joined with "\n\n" (then tokenized once). */
export function joinWikiText(rows: string[]): string {
  return rows.join('\n\n');
}
