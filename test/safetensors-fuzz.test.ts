/**
 * Property test: thousands of seeded mutations of a small real safetensors file (the
 * tinystories-260k fixture when present, else a tiny checkpoint written by the project's own
 * writer) go through the header parser and the model opener. Each one must end in an InputError
 * or in a model that is consistent: every tensor's bytes lie in the data section, sizes match
 * dtype × shape, nothing overlaps, the data section is covered exactly, and every tensor reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/core/errors';
import type { ByteSource, ModelSource } from '../src/core/ports';
import { parseSafetensorsHeader } from '../src/core/safetensors/header';
import { openSafetensorsModel } from '../src/core/safetensors/model';
import { readTensorBytes } from '../src/core/safetensors/read-tensor';
import { DTYPE_BYTES, type SafetensorsHeader } from '../src/core/safetensors/types';
import { makeTinyQwen2, mulberry32, tinyQwen2Files } from '../src/demo/tiny-qwen2';
import { FIXTURE_DIR, HAS_FIXTURE } from './support/fixture';

const MUTATIONS = 3000;

async function realFile(): Promise<Uint8Array> {
  if (HAS_FIXTURE) return new Uint8Array(readFileSync(join(FIXTURE_DIR, 'model.safetensors')));
  const m = makeTinyQwen2({ hidden: 16, intermediate: 24, layers: 1, heads: 2, kvHeads: 1, vocab: 32, tie: true, seed: 1 });
  return (await tinyQwen2Files(m, { dtype: 'F32' })).find((f) => f.path === 'model.safetensors')!.bytes;
}

/** A mutated file: `head` (length prefix + JSON) followed by `tail` (the data section), without copying the data. */
interface Mutant {
  head: Uint8Array;
  tail: Uint8Array;
  what: string;
}

function concatSource(name: string, m: Mutant): ByteSource {
  const size = m.head.length + m.tail.length;
  return {
    name,
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw new InputError(`${name}: read past the end`, { file: name });
      const out = new Uint8Array(length);
      for (let i = 0; i < length; ) {
        const p = offset + i;
        const [src, at] = p < m.head.length ? [m.head, p] : [m.tail, p - m.head.length];
        const n = Math.min(length - i, src.length - at);
        out.set(src.subarray(at, at + n), i);
        i += n;
      }
      return out;
    },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function withLength(json: Uint8Array, len: number | bigint = json.length): Uint8Array {
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
  out.set(json, 8);
  return out;
}

/** Seeded mutations of the header, its length prefix and the file's length. */
function mutate(file: Uint8Array, rand: () => number): Mutant {
  const len = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const json = file.subarray(8, 8 + len);
  const data = file.subarray(8 + len);
  const text = dec.decode(json);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)];
  const obj = (): Record<string, Record<string, unknown>> => JSON.parse(text);
  const tensorNames = Object.keys(obj()).filter((k) => k !== '__metadata__');
  const reencode = (o: unknown, raw?: string): Mutant => {
    const j = enc.encode((raw ?? JSON.stringify(o)).replace(/"@@nest(\d+)@@"/g, (_m, d: string) => '['.repeat(Number(d)) + '1' + ']'.repeat(Number(d))));
    return { head: withLength(j), tail: data, what: '' };
  };
  const op = int(16);
  switch (op) {
    case 0: { // flip bits of header bytes
      const j = json.slice();
      for (let k = 1 + int(3); k > 0; k--) j[int(j.length)] ^= 1 << int(8);
      return { head: withLength(j, len), tail: data, what: 'bit flips' };
    }
    case 1: { // replace a header byte with a JSON-significant one
      const j = json.slice();
      j[int(j.length)] = enc.encode(pick(['"', ',', '{', '}', '[', ']', ':', '0', '9', '-', '.', 'e', ' ', '\\']))[0];
      return { head: withLength(j, len), tail: data, what: 'syntax byte' };
    }
    case 2: { // lie in the length prefix by a little (into the padding, or into the data)
      const d = pick([-4, -3, -2, -1, 1, 2, 3, 4, 8, -8]);
      return { head: withLength(json, Math.max(0, len + d)), tail: data, what: `length ${d > 0 ? '+' : ''}${d}` };
    }
    case 3: { // lie in the length prefix wildly
      const l = pick([0n, 1n, 2n, 2n ** 32n + BigInt(len), 2n ** 53n, 2n ** 64n - 1n, BigInt(len + data.length), BigInt(len + data.length + 1)]);
      return { head: withLength(json, l), tail: data, what: `length ${l}` };
    }
    case 4: { // truncate or extend the data section
      const cut = pick([0, 1, 2, 3, 4, int(data.length)]);
      if (rand() < 0.5) return { head: withLength(json, len), tail: data.subarray(0, data.length - cut), what: `data −${cut}` };
      const t = new Uint8Array(data.length + cut + 1);
      t.set(data);
      return { head: withLength(json, len), tail: t, what: `data +${cut + 1}` };
    }
    case 5: { // shift one tensor's offsets
      const o = obj();
      const t = o[pick(tensorNames)] as { data_offsets: number[] };
      const d = pick([-4, -2, -1, 1, 2, 4, 1024]);
      const which = int(3);
      t.data_offsets = t.data_offsets.map((v, i) => (which === 2 || which === i ? v + d : v));
      return { ...reencode(o), what: 'shift offsets' };
    }
    case 6: { // odd offsets values
      const o = obj();
      const t = o[pick(tensorNames)] as { data_offsets: unknown };
      t.data_offsets = pick([[], [0], [0, 0, 0], [-1, 3], [1.5, 4], ['0', '4'], null, [2 ** 53, 2 ** 53 + 4], [5, 1], nest(int(3) === 0 ? 20_000 : 50)]);
      return { ...reencode(o), what: 'bad offsets' };
    }
    case 7: { // odd shape values
      const o = obj();
      const t = o[pick(tensorNames)] as { shape: unknown[] };
      const s = [...t.shape];
      const v = pick<unknown>([0, -1, 1.5, '4', null, 2 ** 31, 2 ** 53, 1e300, true, [], nest(int(3) === 0 ? 20_000 : 50)]);
      if (s.length > 0 && rand() < 0.7) s[int(s.length)] = v;
      else s.push(v);
      t.shape = rand() < 0.1 ? ({} as never) : s;
      return { ...reencode(o), what: 'bad shape' };
    }
    case 8: { // a shape entry written as 1.0 / 1e0 (same value, different text)
      const o = obj();
      const name = pick(tensorNames);
      const raw = JSON.stringify(o).replace(
        new RegExp(`(${JSON.stringify(name).replace(/[.[\]]/g, '\\$&')}:\\{"dtype":"\\w+","shape":\\[)(\\d+)`),
        (_m, a: string, b: string) => `${a}${b}${pick(['.0', 'e0', '.00'])}`,
      );
      return { ...reencode(null, raw), what: 'float-looking shape' };
    }
    case 9: { // dtype
      const o = obj();
      o[pick(tensorNames)].dtype = pick(['I32', 'F64', 'f32', '', 7, null, 'BF16', 'F16', 'F32', '__proto__', 'toString']);
      return { ...reencode(o), what: 'dtype' };
    }
    case 10: { // duplicate key (text-level, JSON.parse keeps the last)
      const name = pick(tensorNames);
      const o = obj();
      const entry = JSON.stringify(o[name]);
      const raw = JSON.stringify(o).replace(/^\{/, `{${JSON.stringify(name)}:${entry.replace(/\d+\]\}$/, (m) => `${Number(m.slice(0, -2)) + 4}]}`)},`);
      return { ...reencode(null, raw), what: 'duplicate key' };
    }
    case 11: { // remove or add a tensor
      const o = obj();
      if (rand() < 0.5) delete o[pick(tensorNames)];
      else o[pick(['extra', '__proto__', 'constructor', 'x'.repeat(1000)])] = { dtype: 'F32', shape: [1], data_offsets: [data.length, data.length + 4] };
      return { ...reencode(o), what: 'add/remove tensor' };
    }
    case 12: { // metadata oddities
      const o = obj() as Record<string, unknown>;
      o.__metadata__ = pick<unknown>([null, [], 'pt', { format: 1 }, { __proto__: 'x' }, JSON.parse('{"__proto__":"x"}'), { a: { b: 'c' } }, {}]);
      return { ...reencode(o), what: 'metadata' };
    }
    case 13: { // BOM / leading or trailing junk
      const junk = pick(['\uFEFF', ' ', '\n', '\0', 'x']);
      const raw = rand() < 0.5 ? junk + text : text + junk;
      return { ...reencode(null, raw), what: 'junk around JSON' };
    }
    case 14: { // the header as another JSON value
      return { ...reencode(null, pick(['[]', 'null', '"x"', '1', '{}', '{"__metadata__":{}}', 'true', '[' .repeat(20_000)])), what: 'non-object' };
    }
    default: { // change a random digit
      const digits = [...text.matchAll(/\d/g)];
      const m = pick(digits);
      const raw = text.slice(0, m.index) + String(int(10)) + text.slice(m.index! + 1);
      return { ...reencode(null, raw), what: 'digit' };
    }
  }
}

/** A placeholder that `reencode` expands to arrays nested `depth` deep (JSON.stringify itself would overflow the stack). */
function nest(depth: number): string {
  return `@@nest${depth}@@`;
}

/** Thrown when an accepted model breaks a rule (plain checks: expect() per element would dominate the run time). */
class InconsistentModel extends Error {
  override name = 'InconsistentModel';
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new InconsistentModel(what);
}

/** The parsed header satisfies every safetensors rule the pipeline relies on. */
function assertConsistent(h: SafetensorsHeader): void {
  check(h.dataStart === 8 + h.headerLength, 'dataStart');
  const names = new Set<string>();
  let pos = h.dataStart;
  for (const t of h.tensors) {
    check(!names.has(t.name), `${t.name} twice`);
    names.add(t.name);
    check(t.dtype in DTYPE_BYTES, `dtype ${t.dtype}`);
    check(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `shape ${t.shape}`);
    check(t.end - t.begin === t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype], `${t.name} size`);
    if (t.end === t.begin) continue;
    // Sorted, no overlap, no hole.
    check(t.begin === pos, `${t.name} begins at ${t.begin}, previous tensor ended at ${pos}`);
    pos = t.end;
  }
  check(pos === h.fileSize, `data section ends at ${pos}, file at ${h.fileSize}`);
}

interface Counts {
  tried: number;
  inputError: number;
  other: number;
  accepted: number;
  /** Accepted, but the model broke a rule (an expect() inside the run failed). */
  inconsistent: number;
  otherKinds: Map<string, number>;
}

async function fuzz(file: Uint8Array, n: number, seed: number): Promise<Counts> {
  const rand = mulberry32(seed);
  const counts: Counts = { tried: 0, inputError: 0, other: 0, accepted: 0, inconsistent: 0, otherKinds: new Map() };
  for (let i = 0; i < n; i++) {
    const m = mutate(file, rand);
    counts.tried++;
    const size = m.head.length + m.tail.length;
    const src = concatSource('model.safetensors', m);
    try {
      // Parser, directly (when the prefix leaves something to parse).
      if (size >= 8) {
        const len = Number(new DataView(m.head.buffer).getBigUint64(0, true));
        const json = len <= m.head.length - 8 ? m.head.subarray(8, 8 + len) : m.head.subarray(8);
        try {
          assertConsistent(parseSafetensorsHeader(m.head.subarray(0, 8), json, 'model.safetensors', size));
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
        }
      }
      // The model opener, over a source holding config.json and the mutated file.
      const source: ModelSource = {
        label: 'fuzz',
        listFiles: async () => ['config.json', 'model.safetensors'],
        open: async (p) => {
          if (p !== 'model.safetensors') throw new InputError(`${p} not found`, { file: p });
          return src;
        },
      };
      const model = await openSafetensorsModel(source);
      const { header } = model.files.get('model.safetensors')!;
      assertConsistent(header);
      check(model.tensors.size === header.tensors.length, 'tensor count');
      for (const t of header.tensors) check((await readTensorBytes(src, t)).length === t.end - t.begin, `${t.name} read`);
      counts.accepted++;
    } catch (e) {
      if (e instanceof InputError) {
        counts.inputError++;
        // An error message is for a person: bounded, whatever the input echoed.
        if (e.message.length > 2000) {
          counts.other++;
          counts.otherKinds.set(`${m.what}: message of ${e.message.length} characters`, 1);
        }
      } else {
        if (e instanceof InconsistentModel) counts.inconsistent++;
        else counts.other++;
        const kind = `${m.what}: ${e instanceof Error ? `${e.name}: ${e.message.slice(0, 160)}` : String(e)}`;
        counts.otherKinds.set(kind, (counts.otherKinds.get(kind) ?? 0) + 1);
      }
    }
  }
  return counts;
}

describe('fuzzed safetensors headers', () => {
  it(`${MUTATIONS} seeded mutations: each is a clean InputError or a consistent model`, async () => {
    const file = await realFile();
    const counts = await fuzz(file, MUTATIONS, 20261202);
    const summary = `tried ${counts.tried}, InputError ${counts.inputError}, consistent model ${counts.accepted}, accepted but inconsistent ${counts.inconsistent}, other exception ${counts.other}`;
    console.log(`safetensors fuzz: ${summary}`);
    expect([...counts.otherKinds].slice(0, 10)).toEqual([]);
    expect(counts.other).toBe(0);
    expect(counts.inconsistent).toBe(0);
    expect(counts.tried).toBe(MUTATIONS);
    // The mutations really exercise both outcomes.
    expect(counts.inputError).toBeGreaterThan(MUTATIONS / 2);
    expect(counts.accepted).toBeGreaterThan(0);
  });
});
