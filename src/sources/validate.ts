/**
 * Checks that a set of model files is complete before any heavy work starts, so the person
 * hears at once what is missing instead of failing halfway through a run.
 */
import { InputError } from '../core/errors';

export const INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'];

export interface ModelFileSetReport {
  ok: boolean;
  /** Required files that are absent (config.json, shards named by the index). */
  missing: string[];
  /** Other problems (unreadable index, no weights at all). */
  problems: string[];
  /** The safetensors files the model uses, in index order (or the single file). */
  weightFiles: string[];
  indexFile?: string;
  /** Optional tokenizer files that are present / absent (absence is not an error). */
  tokenizerFiles: string[];
  missingTokenizerFiles: string[];
  /** One human sentence covering every missing file and problem ('' when ok). */
  message: string;
}

/**
 * `paths` are relative to the model root. `readText` reads the index (needed to know which
 * shards must exist); without it an index is only checked for presence.
 */
export async function validateModelFileSet(
  paths: string[],
  readText?: (path: string) => Promise<string>,
): Promise<ModelFileSetReport> {
  const have = new Set(paths);
  const missing: string[] = [];
  const problems: string[] = [];
  let weightFiles: string[] = [];
  let indexFile: string | undefined;

  if (!have.has('config.json')) missing.push('config.json');

  if (have.has(INDEX_FILE)) {
    indexFile = INDEX_FILE;
    if (readText) {
      try {
        const idx = JSON.parse(await readText(INDEX_FILE)) as { weight_map?: Record<string, string> };
        if (!idx || typeof idx.weight_map !== 'object' || idx.weight_map === null) {
          problems.push(`${INDEX_FILE} has no "weight_map" object`);
        } else {
          const shards: string[] = [];
          for (const f of Object.values(idx.weight_map)) if (typeof f === 'string' && !shards.includes(f)) shards.push(f);
          weightFiles = shards;
          for (const s of shards) if (!have.has(s)) missing.push(s);
          if (shards.length === 0) problems.push(`${INDEX_FILE} names no tensors`);
        }
      } catch (e) {
        problems.push(`${INDEX_FILE} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
      }
    } else {
      weightFiles = paths.filter((p) => p.endsWith('.safetensors')).sort();
    }
  } else if (have.has('model.safetensors')) {
    weightFiles = ['model.safetensors'];
  } else {
    const st = paths.filter((p) => p.endsWith('.safetensors')).sort();
    if (st.length === 1) weightFiles = st;
    else if (st.length === 0) problems.push('no .safetensors weight files (expected model.safetensors, or shards with model.safetensors.index.json)');
    else missing.push(INDEX_FILE); // several shards but nothing saying which tensor is where
  }

  const tokenizerFiles = TOKENIZER_FILES.filter((f) => have.has(f));
  const missingTokenizerFiles = TOKENIZER_FILES.filter((f) => !have.has(f));
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${missing.join(', ')}`);
  parts.push(...problems);
  return {
    ok: parts.length === 0,
    missing,
    problems,
    weightFiles,
    indexFile,
    tokenizerFiles,
    missingTokenizerFiles,
    message: parts.length ? `Incomplete model files: ${parts.join('; ')}.` : '',
  };
}

/** Throws an InputError naming everything missing. */
export async function assertModelFileSet(
  paths: string[],
  readText?: (path: string) => Promise<string>,
  where = 'the model',
): Promise<ModelFileSetReport> {
  const r = await validateModelFileSet(paths, readText);
  if (!r.ok) throw new InputError(`${r.message.replace(/\.$/, '')} in ${where}.`, { file: r.missing[0] });
  return r;
}

/** A cheap early check on config.json: is this a Qwen2 model at all? (Full parsing lives in core/qwen2.) */
export function checkQwen2ConfigText(text: string, where = 'config.json'): void {
  let cfg: { model_type?: unknown; architectures?: unknown };
  try {
    cfg = JSON.parse(text);
  } catch {
    throw new InputError(`${where} is not valid JSON`, { file: 'config.json' });
  }
  if (cfg?.model_type !== 'qwen2') {
    const arch = Array.isArray(cfg?.architectures) ? ` (architectures: ${cfg.architectures.join(', ')})` : '';
    throw new InputError(
      `not a Qwen2 model: ${where} has model_type ${JSON.stringify(cfg?.model_type ?? null)}${arch}; expected "qwen2" (Qwen2ForCausalLM, e.g. Qwen/Qwen2.5-0.5B)`,
      { file: 'config.json' },
    );
  }
}
