import { DEFAULT_SETTINGS, type QuantSettings } from './settings';

/** The model part of a run's description. Tokens are never part of it. */
export interface RunTarget {
  /** Hub repo id ("Qwen/Qwen2.5-0.5B"), "demo:<name>", or a local name. */
  model: string;
  revision?: string;
  hub?: string;
}

/**
 * Query string that reproduces a run in the app (the "shareable link"), e.g.
 * `?model=Qwen%2FQwen2.5-0.5B&revision=…&bits=4&scheme=sp&…`. Every setting is written,
 * defaults included, so a link keeps meaning the same bytes if defaults ever change.
 */
export function runQuery(target: RunTarget, s: QuantSettings): string {
  const p = new URLSearchParams();
  p.set('model', target.model);
  if (target.revision) p.set('revision', target.revision);
  if (target.hub) p.set('hub', target.hub);
  p.set('bits', String(s.bits));
  p.set('scheme', s.scheme);
  p.set('clip', s.clip);
  p.set('rotation', s.rotation);
  p.set('block', String(s.blockSize));
  p.set('seed', String(s.seed));
  p.set('embed', s.quantizeEmbeddings ? '1' : '0');
  p.set('dtype', s.dtype);
  return `?${p.toString()}`;
}

/** Inverse of runQuery (unknown keys ignored; values validated later by parseSettings). */
export function parseRunQuery(query: string): { target: Partial<RunTarget>; settings: Partial<Record<keyof QuantSettings, string>>; autorun: boolean } {
  const p = new URLSearchParams(query);
  const get = (k: string): string | undefined => p.get(k) ?? undefined;
  const settings: Partial<Record<keyof QuantSettings, string>> = {};
  const map: [string, keyof QuantSettings][] = [
    ['bits', 'bits'], ['scheme', 'scheme'], ['clip', 'clip'], ['rotation', 'rotation'], ['block', 'blockSize'],
    ['seed', 'seed'], ['embed', 'quantizeEmbeddings'], ['dtype', 'dtype'],
  ];
  for (const [q, k] of map) { const v = get(q); if (v !== undefined) settings[k] = v; }
  return { target: { model: get('model'), revision: get('revision'), hub: get('hub') }, settings, autorun: get('autorun') === '1' };
}

/** The equivalent CLI call, for the model card and the app's result panel. */
export function cliCommand(modelArg: string, s: QuantSettings, revision?: string): string {
  const parts = ['npm run quantize --', `--model ${modelArg}`];
  if (revision) parts.push(`--revision ${revision}`);
  parts.push('--out <dir>', `--bits ${s.bits}`, `--scheme ${s.scheme}`, `--rotation ${s.rotation}`);
  if (s.rotation === 'block') parts.push(`--block-size ${s.blockSize}`);
  parts.push(`--clip ${s.clip}`, `--seed ${s.seed}`, `--quantize-embeddings ${s.quantizeEmbeddings}`, `--dtype ${s.dtype}`);
  return parts.join(' ');
}

export { DEFAULT_SETTINGS };
