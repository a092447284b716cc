/**
 * A small byte-level BPE tokenizer.json (the GPT-2/Qwen2 scheme) for the random demo model:
 * 256 byte tokens, a handful of English merges and one end-of-text token. Enough for
 * tokenizers.js to encode and decode any text, so the demo model can be evaluated like a real one.
 */

/** GPT-2's byte → printable-character table: printable bytes map to themselves, the rest to U+0100…. */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
}

/** Frequent English pairs, applied in this order (later merges may use earlier results). */
const MERGES: [string, string][] = [
  ['Ġ', 't'], ['h', 'e'], ['Ġ', 'a'], ['i', 'n'], ['Ġt', 'he'], ['e', 'r'], ['o', 'n'], ['Ġ', 's'],
  ['a', 'n'], ['r', 'e'], ['Ġ', 'w'], ['o', 'u'], ['e', 'd'], ['Ġ', 'o'], ['i', 's'], ['Ġ', 'b'],
  ['a', 't'], ['Ġ', 'c'], ['n', 'd'], ['Ġa', 'nd'], ['Ġ', 'h'], ['i', 't'], ['e', 's'], ['Ġ', 'f'],
  ['in', 'g'], ['o', 'r'], ['Ġ', 'm'], ['l', 'l'], ['Ġ', 'p'], ['Ġ', 'd'],
];

export const END_OF_TEXT = '<|endoftext|>';

export interface ByteBpe {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Number of ids used (bytes + merges + special). */
  size: number;
  eosId: number;
}

export function makeByteBpe(): ByteBpe {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((ch, b) => (vocab[ch] = b));
  for (const [a, b] of MERGES) {
    if (!(a in vocab) || !(b in vocab)) throw new Error(`merge ${a} ${b} uses a token not yet in the vocabulary`);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const eosId = Object.keys(vocab).length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eosId, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: null,
    eos_token: END_OF_TEXT,
    pad_token: END_OF_TEXT,
    model_max_length: 512,
    tokenizer_class: 'Qwen2Tokenizer',
    clean_up_tokenization_spaces: false,
  };
  return { tokenizerJson, tokenizerConfig, size: eosId + 1, eosId };
}
