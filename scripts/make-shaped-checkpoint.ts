/**
 * tsx scripts/make-shaped-checkpoint.ts --shape 0.5b|7b [--layers N] --out DIR [--shards N] [--seed S]
 *
 * A random BF16 Qwen2 checkpoint with a real model's exact tensor shapes, for memory and speed
 * measurements (never for quality): values N(0, 0.02²) (norm gains around 1, biases small),
 * written tensor by tensor in 8 MiB chunks, so making the 3.1 GB 7B-shaped 2-layer checkpoint
 * needs no more memory than the chunk.
 *   0.5b: d 896, F 4864, 14/2 heads, vocab 151936, tied, 24 layers (988 MB), one file
 *   7b:   d 3584, F 18944, 28/4 heads, vocab 152064, untied, cut to --layers (default 2), 3 shards (≈ 3.1 GB)
 */
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { qwen2Tensors } from '../src/core/qwen2/tensors';
import { planSafetensorsShards, tensorSpecBytes, type TensorSpec } from '../src/core/safetensors/writer';

const SHAPES = {
  '0.5b': { hidden: 896, intermediate: 4864, heads: 14, kvHeads: 2, vocab: 151936, tie: true, layers: 24, shards: 1, theta: 1000000 },
  '7b': { hidden: 3584, intermediate: 18944, heads: 28, kvHeads: 4, vocab: 152064, tie: false, layers: 2, shards: 3, theta: 1000000 },
} as const;

const { values } = parseArgs({
  options: { shape: { type: 'string' }, layers: { type: 'string' }, out: { type: 'string' }, shards: { type: 'string' }, seed: { type: 'string', default: '1' } },
});
const shape = SHAPES[values.shape as keyof typeof SHAPES];
if (!shape || !values.out) {
  process.stderr.write('usage: tsx scripts/make-shaped-checkpoint.ts --shape 0.5b|7b [--layers N] --out DIR [--shards N] [--seed S]\n');
  process.exit(2);
}
const layers = values.layers !== undefined ? Number(values.layers) : shape.layers;
const shards = values.shards !== undefined ? Number(values.shards) : shape.shards;
const out = values.out;
const headDim = shape.hidden / shape.heads;
const dims = {
  hidden: shape.hidden, intermediate: shape.intermediate, layers, heads: shape.heads, kvHeads: shape.kvHeads, headDim,
  vocab: shape.vocab, rmsNormEps: 1e-6, ropeTheta: shape.theta, tieWordEmbeddings: shape.tie,
};
const tensors = qwen2Tensors(dims, { lmHead: !shape.tie });
const specs: TensorSpec[] = tensors.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape }));
const total = specs.reduce((s, t) => s + tensorSpecBytes(t), 0);
const layout = planSafetensorsShards(specs, { maxShardBytes: shards > 1 ? Math.ceil(total / shards) : total });

// xorshift32 → an index into 65536 precomputed BF16 values of N(0, σ²) (Box–Muller on a fixed seed).
let state = (Number(values.seed) * 2654435761) >>> 0 || 1;
const next = (): number => {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state;
};
function table(mean: number, sigma: number): Uint16Array {
  const t = new Uint16Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < t.length; i++) {
    const a = (next() + 1) / 4294967297;
    const b = next() / 4294967296;
    f[0] = mean + sigma * Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
    t[i] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16;
  }
  return t;
}
const weights = table(0, 0.02);
const gains = table(1, 0.1);
const biases = table(0, 0.01);

mkdirSync(out, { recursive: true });
const CHUNK = 4 * 2 ** 20; // elements (8 MiB of BF16)
const buf = new Uint16Array(CHUNK);
const t0 = performance.now();
for (const file of layout.files) {
  const fd = openSync(join(out, file.fileName), 'w');
  writeSync(fd, file.header);
  for (const spec of file.specs) {
    const tab = spec.name.endsWith('norm.weight') ? gains : spec.name.endsWith('.bias') ? biases : weights;
    let left = tensorSpecBytes(spec) / 2;
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      for (let i = 0; i < n; i++) buf[i] = tab[next() & 0xffff];
      writeSync(fd, new Uint8Array(buf.buffer, 0, n * 2));
      left -= n;
    }
  }
  closeSync(fd);
  process.stderr.write(`${file.fileName}: ${(file.size / 1e6).toFixed(1)} MB\n`);
}
if (layout.indexJson) writeFileSync(join(out, 'model.safetensors.index.json'), layout.indexJson);
const config = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
  hidden_size: shape.hidden, initializer_range: 0.02, intermediate_size: shape.intermediate, max_position_embeddings: 32768,
  max_window_layers: layers, model_type: 'qwen2', num_attention_heads: shape.heads, num_hidden_layers: layers,
  num_key_value_heads: shape.kvHeads, rms_norm_eps: 1e-6, rope_theta: shape.theta, sliding_window: null,
  tie_word_embeddings: shape.tie, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: shape.vocab,
};
writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
process.stderr.write(`${out}: ${values.shape}-shaped, ${layers} layers, ${(total / 1e6).toFixed(0)} MB of tensors in ${layout.files.length} file(s), ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
