/**
 * Text ↔ ids for the evaluation (SPEC §7), from a model's own `tokenizer.json` and
 * `tokenizer_config.json` via tokenizers.js — it runs in browsers and Node alike.
 */
import { Tokenizer } from '@huggingface/tokenizers';

export interface EncodeOptions {
  /** Prepend the BOS token (when the tokenizer has one). Default: `add_bos_token` of the config. */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens such as `<s>`/`<|endoftext|>`. Default true. */
  skipSpecial?: boolean;
}

export interface TextTokenizer {
  /** Id of the config's `bos_token`, when it has one (Qwen2 tokenizers do not). */
  readonly bosId: number | undefined;
  /** Id of the config's `eos_token`, when it has one. */
  readonly eosId: number | undefined;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
}

type Json = Record<string, unknown>;

function parse(j: string | object | undefined, what: string): Json {
  if (j === undefined) return {};
  const v: unknown = typeof j === 'string' ? JSON.parse(j) : j;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: not a JSON object`);
  return v as Json;
}

/** `bos_token` is a string, or (older configs) an AddedToken object with `content`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/**
 * Loads a tokenizer from the text (or parsed objects) of `tokenizer.json` and, optionally,
 * `tokenizer_config.json`.
 */
export function loadTokenizer(tokenizerJson: string | object, tokenizerConfig?: string | object): TextTokenizer {
  const tj = parse(tokenizerJson, 'tokenizer.json');
  const tc = parse(tokenizerConfig, 'tokenizer_config.json');
  const tok = new Tokenizer(tj, tc);
  const idOf = (v: unknown): number | undefined => {
    const s = tokenText(v);
    return s === undefined ? undefined : tok.token_to_id(s);
  };
  const bosId = idOf(tc.bos_token);
  const eosId = idOf(tc.eos_token);
  const defaultAddBos = tc.add_bos_token === true;
  return {
    bosId,
    eosId,
    encode(text: string, opts: EncodeOptions = {}): number[] {
      // BOS is added here rather than by the post-processor so `addBos` means the same for
      // every tokenizer (the Llama template adds it, Qwen's ByteLevel one never does).
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      const addBos = opts.addBos ?? defaultAddBos;
      return addBos && bosId !== undefined ? [bosId, ...ids] : ids;
    },
    decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
      return tok.decode(Array.from(ids), {
        skip_special_tokens: opts.skipSpecial ?? true,
        clean_up_tokenization_spaces: false,
      });
    },
  };
}
