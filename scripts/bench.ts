/**
 * npm run bench -- [--runs 3] [--models 0.5b,7b] [--backends cpu,webgpu] [--settings defaults,absmax]
 *                  [--no-numpy] [--cache DIR] [--cli-root DIR]
 *
 * One table: the whole CLI (`npm run quantize`, its own process) on
 *   0.5b — random BF16 with the exact Qwen2.5-0.5B shapes (24 layers, d 896, F 4864, 14/2 heads,
 *          vocab 151936, tied; ≈ 988 MB, one file),
 *   7b   — the Qwen2.5-7B shapes cut to 2 layers (d 3584, F 18944, 28/4 heads, vocab 152064,
 *          untied; ≈ 3.1 GB in 3 shards),
 * on the CPU path and on Dawn (npm `webgpu`), with the defaults (W4 sp/mse, embeddings quantized)
 * and with W4 per_tensor/absmax (full rotation, embeddings not quantized): median wall time of
 * --runs, input MB/s, peak RSS of the CLI process (/usr/bin/time -v), and the ratio to
 * scripts/bench-numpy.py (a vectorised numpy script of the same math) on the same checkpoint.
 * Checkpoints are generated once into --cache (default: <os tmpdir>/quarot-bench-cache), never
 * into the repository. --cli-root runs the CLI of another checkout (e.g. an older commit, for a
 * before/after table). Per-kernel times: npm run bench:kernels. Speed is measured here, never
 * asserted in tests.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    models: { type: 'string', default: '0.5b,7b' },
    backends: { type: 'string', default: 'cpu,webgpu' },
    settings: { type: 'string', default: 'defaults,absmax' },
    'no-numpy': { type: 'boolean' },
    cache: { type: 'string' },
    'cli-root': { type: 'string' },
  },
});
const runs = Math.max(1, Number(values.runs));
const list = (s: string | undefined): string[] => String(s).split(',').map((x) => x.trim()).filter(Boolean);

interface Shape {
  name: string; hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; vocab: number; tie: boolean; shards: number;
}
const MODELS: Record<string, Shape> = {
  '0.5b': { name: 'qwen2.5-0.5b-shaped', hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, vocab: 151936, tie: true, shards: 1 },
  '7b': { name: 'qwen2.5-7b-shaped-2-layers', hidden: 3584, intermediate: 18944, layers: 2, heads: 28, kvHeads: 4, vocab: 152064, tie: false, shards: 3 },
};
const SETTINGS: Record<string, { label: string; cli: string[]; numpy: string[] }> = {
  defaults: { label: 'defaults (W4 sp/mse, emb. quantized)', cli: [], numpy: ['--scheme', 'sp', '--clip', 'mse', '--quantize-embeddings', '1'] },
  absmax: {
    label: 'W4 per_tensor/absmax, emb. kept',
    cli: ['--scheme', 'per_tensor', '--clip', 'absmax', '--quantize-embeddings', 'false'],
    numpy: ['--scheme', 'per_tensor', '--clip', 'absmax', '--quantize-embeddings', '0'],
  },
};

// ── checkpoint generation (streamed: a few MB in memory whatever the model) ─────────────────

interface TensorDef { name: string; shape: number[]; kind: 'matrix' | 'norm' | 'bias'; std: number }

function tensorDefs(s: Shape): TensorDef[] {
  const d = s.hidden;
  const D = d / s.heads;
  const kv = s.kvHeads * D;
  const out: TensorDef[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, d], kind: 'matrix', std: 0.02 }];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [d], kind: 'norm', std: 0.2 },
      { name: `${p}self_attn.q_proj.weight`, shape: [d, d], kind: 'matrix', std: 0.02 },
      { name: `${p}self_attn.q_proj.bias`, shape: [d], kind: 'bias', std: 0.1 },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, d], kind: 'matrix', std: 0.02 },
      { name: `${p}self_attn.k_proj.bias`, shape: [kv], kind: 'bias', std: 0.1 },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, d], kind: 'matrix', std: 0.02 },
      { name: `${p}self_attn.v_proj.bias`, shape: [kv], kind: 'bias', std: 0.1 },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, d], kind: 'matrix', std: 0.02 },
      { name: `${p}post_attention_layernorm.weight`, shape: [d], kind: 'norm', std: 0.2 },
      { name: `${p}mlp.gate_proj.weight`, shape: [s.intermediate, d], kind: 'matrix', std: 0.02 },
      { name: `${p}mlp.up_proj.weight`, shape: [s.intermediate, d], kind: 'matrix', std: 0.02 },
      { name: `${p}mlp.down_proj.weight`, shape: [d, s.intermediate], kind: 'matrix', std: 0.02 },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [d], kind: 'norm', std: 0.2 });
  if (!s.tie) out.push({ name: 'lm_head.weight', shape: [s.vocab, d], kind: 'matrix', std: 0.02 });
  return out;
}

/** xorshift32 → approximately normal (sum of 4 uniforms) → BF16 (round to nearest even). */
function fillBf16(out: Uint16Array, state: { s: number }, def: TensorDef): void {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let s = state.s;
  for (let i = 0; i < out.length; i++) {
    let acc = 0;
    for (let j = 0; j < 4; j++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      acc += (s >>> 0) / 4294967296;
    }
    const z = (acc - 2) * 1.7320508; // unit variance
    f[0] = def.kind === 'norm' ? 1 + z * def.std : z * def.std;
    const b = u[0];
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  state.s = s;
}

function generate(dir: string, s: Shape): void {
  const defs = tensorDefs(s);
  const bytesOf = (t: TensorDef): number => t.shape.reduce((a, b) => a * b, 1) * 2;
  const total = defs.reduce((a, t) => a + bytesOf(t), 0);
  // Contiguous shards of about total/shards bytes, in the order above.
  const shards: TensorDef[][] = [[]];
  let inShard = 0;
  for (const t of defs) {
    if (inShard > 0 && inShard + bytesOf(t) / 2 > total / s.shards && shards.length < s.shards) { shards.push([]); inShard = 0; }
    shards[shards.length - 1].push(t);
    inShard += bytesOf(t);
  }
  mkdirSync(dir, { recursive: true });
  const fileName = (i: number): string => (shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  const state = { s: 0x9e3779b9 };
  shards.forEach((group, i) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let at = 0;
    for (const t of group) {
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [at, at + bytesOf(t)] };
      at += bytesOf(t);
      weightMap[t.name] = fileName(i);
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
    const fd = openSync(join(dir, fileName(i)), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    const chunk = new Uint16Array(1 << 22);
    for (const t of group) {
      let left = bytesOf(t) / 2;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        const part = chunk.subarray(0, n);
        fillBf16(part, state, t);
        writeSync(fd, new Uint8Array(part.buffer, 0, n * 2));
        left -= n;
      }
    }
    closeSync(fd);
  });
  if (shards.length > 1) writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  const D = s.hidden / s.heads;
  void D;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
    hidden_size: s.hidden, initializer_range: 0.02, intermediate_size: s.intermediate, max_position_embeddings: 32768,
    max_window_layers: s.layers, model_type: 'qwen2', num_attention_heads: s.heads, num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: null,
    tie_word_embeddings: s.tie, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: s.vocab,
  }, null, 2));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 151643, eos_token_id: 151643 }));
  writeFileSync(join(dir, '.complete'), String(total));
}

function inputBytes(dir: string): number {
  return Number(readFileSync(join(dir, '.complete'), 'utf8'));
}

// ── runs ─────────────────────────────────────────────────────────────────────────────────────

interface Run { wallS: number; peakRssMb: number; cpuS: number }

/** One child process under /usr/bin/time -v: wall seconds and max RSS (MB). */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const useTime = existsSync('/usr/bin/time');
  const t0 = performance.now();
  const r = spawnSync(useTime ? '/usr/bin/time' : cmd, useTime ? ['-v', cmd, ...args] : args, {
    encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26,
  });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${(r.stderr ?? '').slice(-3000)}`);
  }
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  return { wallS, peakRssMb: m ? Number(m[1]) / 1024 : NaN, cpuS: user && sys ? Number(user[1]) + Number(sys[1]) : NaN };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function numpyAvailable(): string | null {
  const r = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

interface Row { model: string; backend: string; settings: string; runs: Run[]; inMb: number; numpy?: Run[] }

function main(): void {
  const cache = values.cache ?? join(tmpdir(), 'quarot-bench-cache');
  const models = list(values.models);
  const backends = list(values.backends);
  const settings = list(values.settings);
  for (const m of models) if (!MODELS[m]) throw new Error(`--models: unknown ${m} (expected ${Object.keys(MODELS).join(', ')})`);
  for (const s of settings) if (!SETTINGS[s]) throw new Error(`--settings: unknown ${s} (expected ${Object.keys(SETTINGS).join(', ')})`);
  for (const b of backends) if (b !== 'cpu' && b !== 'webgpu') throw new Error(`--backends: unknown ${b} (expected cpu, webgpu)`);
  let numpy = values['no-numpy'] ? null : numpyAvailable();
  if (!values['no-numpy'] && !numpy) console.log('note: python3 with numpy not found — the numpy column is skipped (pip install numpy to get it)');
  if (values['no-numpy']) numpy = null;
  const out = join(cache, 'out');
  const cliRoot = values['cli-root'] ?? process.cwd();
  const rows: Row[] = [];
  const kernels = values['cli-root'] ? `the CLI of ${cliRoot}` : process.env.QUAROT_CPU_SIMD === '0' ? 'CPU kernels: plain TypeScript (QUAROT_CPU_SIMD=0)' : 'CPU kernels: WebAssembly SIMD';
  console.log(`cache ${cache}; ${runs} run(s) each; ${kernels}`);
  for (const key of models) {
    const shape = MODELS[key];
    const dir = join(cache, shape.name);
    if (!existsSync(join(dir, '.complete'))) {
      console.log(`generating ${shape.name} (random BF16) into ${dir} …`);
      const t0 = performance.now();
      rmSync(dir, { recursive: true, force: true });
      generate(dir, shape);
      console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const inMb = inputBytes(dir) / 1e6;
    for (const sk of settings) {
      const set = SETTINGS[sk];
      let numpyRuns: Run[] | undefined;
      if (numpy) {
        numpyRuns = [];
        for (let r = 0; r < runs; r++) {
          numpyRuns.push(timed('python3', ['scripts/bench-numpy.py', '--model', dir, '--out', join(out, 'numpy'), ...set.numpy]));
          rmSync(join(out, 'numpy'), { recursive: true, force: true });
          console.log(`  numpy ${shape.name} ${sk}: ${numpyRuns[r].wallS.toFixed(2)} s (CPU ${numpyRuns[r].cpuS.toFixed(1)} s), ${numpyRuns[r].peakRssMb.toFixed(0)} MB`);
        }
      }
      for (const backend of backends) {
        const rs: Run[] = [];
        for (let r = 0; r < runs; r++) {
          rmSync(join(out, 'cli'), { recursive: true, force: true });
          rs.push(timed(process.execPath, ['--import', 'tsx', join(cliRoot, 'src/cli/quantize.ts'), '--model', dir, '--out', join(out, 'cli'), '--backend', backend, '--quiet', '--overwrite', ...set.cli], { EGL_PLATFORM: 'surfaceless' }));
          console.log(`  cli ${backend} ${shape.name} ${sk}: ${rs[r].wallS.toFixed(2)} s (CPU ${rs[r].cpuS.toFixed(1)} s), ${rs[r].peakRssMb.toFixed(0)} MB`);
        }
        rmSync(join(out, 'cli'), { recursive: true, force: true });
        rows.push({ model: shape.name, backend, settings: set.label, runs: rs, inMb, numpy: numpyRuns });
      }
    }
  }
  rmSync(out, { recursive: true, force: true });

  const header = ['checkpoint', 'backend', 'settings', `wall (median of ${runs})`, 'CPU time', 'MB/s in', 'peak RSS', ...(numpy ? ['numpy wall', 'numpy CPU', 'numpy RSS', 'CLI / numpy (wall)'] : [])];
  const table = rows.map((r) => {
    const wall = median(r.runs.map((x) => x.wallS));
    const rss = Math.max(...r.runs.map((x) => x.peakRssMb));
    const cpu = median(r.runs.map((x) => x.cpuS));
    const cells = [r.model, r.backend, r.settings, `${wall.toFixed(2)} s`, `${cpu.toFixed(1)} s`, (r.inMb / wall).toFixed(0), `${rss.toFixed(0)} MB`];
    if (numpy && r.numpy) {
      const nw = median(r.numpy.map((x) => x.wallS));
      cells.push(`${nw.toFixed(2)} s`, `${median(r.numpy.map((x) => x.cpuS)).toFixed(1)} s`, `${Math.max(...r.numpy.map((x) => x.peakRssMb)).toFixed(0)} MB`, `${(wall / nw).toFixed(2)}×`);
    }
    return cells;
  });
  console.log(`\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const c of table) console.log(`| ${c.join(' | ')} |`);
  console.log(`\nwall = the whole CLI process (Node start and tsx included); CPU time = its user + system time, less sensitive to other load than wall; peak RSS of that process (/usr/bin/time -v).${numpy ? ` numpy ${numpy}: scripts/bench-numpy.py, same math, same checkpoint.` : ''}`);
  void statSync;
}

main();
