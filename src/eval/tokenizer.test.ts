import { describe, expect, it } from 'vitest';
import { HAS_FIXTURE, fixtureJson, fixtureSuite, fixtureText } from '../../test/support/fixture';
import { loadTokenizer } from './tokenizer';

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('tokenizer of tinystories-260k'), () => {
  const load = () => loadTokenizer(fixtureText('tokenizer.json'), fixtureText('tokenizer_config.json'));

  it('tokenizing each story of eval.txt with BOS reproduces eval.tokens.json exactly', () => {
    const tok = load();
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    const ref = fixtureJson<{ ids: number[]; story_starts: number[]; n_stories: number }>('eval.tokens.json');
    // Each story is followed by "\n<|endoftext|>\n" (so the last split piece is empty).
    const parts = fixtureText('eval.txt').split('\n<|endoftext|>\n');
    expect(parts[parts.length - 1]).toBe('');
    const stories = parts.slice(0, -1);
    expect(stories.length).toBe(176);
    const ids: number[] = [];
    const starts: number[] = [];
    for (const s of stories) {
      starts.push(ids.length);
      ids.push(...tok.encode(s, { addBos: true }));
    }
    expect(ids.length).toBe(58737);
    expect(starts).toEqual(ref.story_starts);
    expect(ids).toEqual(ref.ids);
  });

  it('decodes the greedy reference ids to the reference text', () => {
    const ref = fixtureJson<{ greedy_from_bos_ids: number[]; greedy_from_bos_text: string }>('reference.json');
    expect(load().decode(ref.greedy_from_bos_ids)).toBe(ref.greedy_from_bos_text);
  });

  it('addBos defaults to the config and round-trips text', () => {
    const tok = load();
    expect(tok.encode('Once upon a time')).toEqual([1, ...tok.encode('Once upon a time', { addBos: false })]);
    expect(tok.encode('Once upon', { addBos: false })).toEqual([403, 407]);
    const text = 'Lily saw a big, red ball.\nShe smiled: "café 42"';
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([1, 403, 407], { skipSpecial: false })).toBe('<s> Once upon');
  });
});

/** GPT-2's reversible byte → printable-character map, which byte-level BPE vocabularies use. */
function byteChars(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + extra++));
  return out;
}

describe('a Qwen2-style byte-level BPE tokenizer', () => {
  // Vocabulary: the 256 byte characters (id = byte value), then merged pieces, then one
  // special token — the same pipeline as Qwen2.5's tokenizer.json, in miniature.
  const chars = byteChars();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ t', 'Ġt he', 'Ġ w', 'o r'];
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 264, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
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
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: null,
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    errors: 'replace',
    model_max_length: 32768,
    tokenizer_class: 'Qwen2Tokenizer',
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: {
      '264': { content: '<|endoftext|>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
    },
  };

  it('applies the merges in rank order, maps bytes, keeps special tokens whole', () => {
    const tok = loadTokenizer(JSON.stringify(tokenizerJson), JSON.stringify(tokenizerConfig));
    expect(tok.bosId).toBeUndefined();
    expect(tok.eosId).toBe(264);
    // "hello" → he,l,l,o → he,ll,o → hell,o → hello; " the" → Ġ,t,he → Ġt,he → Ġthe;
    // " world" → Ġw,or,l,d; "\n" → byte 10; "é" → bytes C3 A9; then the special token.
    const ids = tok.encode('hello the world\né<|endoftext|>', { addBos: true });
    expect(ids).toEqual([259, 261, 262, 263, 108, 100, 10, 195, 169, 264]);
    expect(tok.decode(ids, { skipSpecial: false })).toBe('hello the world\né<|endoftext|>');
    expect(tok.decode(ids)).toBe('hello the world\né');
    // A digit run splits one digit per piece (\p{N}), and a space before punctuation stays with it.
    // 'Ġ' is the space byte (32).
    expect(vocab['Ġ']).toBe(32);
    expect(tok.encode('42 !')).toEqual([52, 50, 32, 33]);
  });
});
