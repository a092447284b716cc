import { INDEX_FILE } from './model';
import { DTYPE_BYTES, type Dtype } from './types';
import { type BundleSink, type FileWriter } from '../ports';

export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
}

export interface ShardFile {
  fileName: string;
  specs: TensorSpec[];
  /** The 8-byte little-endian length followed by the space-padded JSON header. */
  header: Uint8Array;
  /** Final file size: header plus data. */
  size: number;
}

export interface ShardLayout {
  files: ShardFile[];
  /** Text of `model.safetensors.index.json`, present only when sharded. */
  indexJson?: string;
  totalDataBytes: number;
}

export function tensorSpecBytes(spec: TensorSpec): number {
  let n = DTYPE_BYTES[spec.dtype];
  for (const d of spec.shape) n *= d;
  return n;
}

function shardName(i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

/** JSON object text with keys in the given order (a plain object would hoist integer-like keys). */
function orderedObject(entries: [string, string][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

function buildHeader(specs: TensorSpec[], metadata: Record<string, string>): Uint8Array {
  const entries: [string, string][] = [['__metadata__', orderedObject(Object.entries(metadata).map(([k, v]) => [k, JSON.stringify(v)]))]];
  let offset = 0;
  for (const s of specs) {
    const end = offset + tensorSpecBytes(s);
    entries.push([s.name, `{"dtype":${JSON.stringify(s.dtype)},"shape":${JSON.stringify(s.shape)},"data_offsets":[${offset},${end}]}`]);
    offset = end;
  }
  const json = new TextEncoder().encode(orderedObject(entries));
  // Pad so the data section starts 8-aligned (8 + padded length is a multiple of 8).
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, padded % 2 ** 32, true);
  dv.setUint32(4, Math.floor(padded / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return out;
}

/**
 * Lay tensors out into one `model.safetensors`, or Hugging Face style shards of at most
 * `maxShardBytes` data bytes each (a bigger tensor gets a shard of its own; tensors are never
 * split and keep their order).
 */
export function planSafetensorsShards(
  specs: TensorSpec[],
  opts: { maxShardBytes: number; metadata?: Record<string, string> },
): ShardLayout {
  if (!(opts.maxShardBytes > 0)) throw new RangeError(`planSafetensorsShards: maxShardBytes must be positive, got ${opts.maxShardBytes}`);
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new Error(`planSafetensorsShards: tensor ${s.name} given twice`);
    seen.add(s.name);
    if (!(s.dtype in DTYPE_BYTES)) throw new Error(`planSafetensorsShards: tensor ${s.name} has unsupported dtype ${s.dtype}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`planSafetensorsShards: tensor ${s.name} has invalid shape ${JSON.stringify(s.shape)}`);
    }
  }
  const metadata: Record<string, string> = { format: 'pt' };
  for (const [k, v] of Object.entries(opts.metadata ?? {})) if (k !== 'format') metadata[k] = v;

  const sizes = specs.map(tensorSpecBytes);
  const totalDataBytes = sizes.reduce((a, b) => a + b, 0);

  const groups: TensorSpec[][] = [];
  if (totalDataBytes <= opts.maxShardBytes) {
    groups.push(specs.slice());
  } else {
    let cur: TensorSpec[] = [];
    let curBytes = 0;
    specs.forEach((s, i) => {
      if (cur.length > 0 && curBytes + sizes[i] > opts.maxShardBytes) {
        groups.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(s);
      curBytes += sizes[i];
    });
    if (cur.length > 0) groups.push(cur);
  }

  const sharded = groups.length > 1;
  const files: ShardFile[] = groups.map((g, i) => {
    const header = buildHeader(g, metadata);
    const data = g.reduce((a, s) => a + tensorSpecBytes(s), 0);
    return { fileName: sharded ? shardName(i, groups.length) : 'model.safetensors', specs: g, header, size: header.length + data };
  });

  let indexJson: string | undefined;
  if (sharded) {
    const lines: string[] = [];
    for (const f of files) for (const s of f.specs) lines.push(`    ${JSON.stringify(s.name)}: ${JSON.stringify(f.fileName)}`);
    indexJson =
      `{\n  "metadata": {\n    "total_size": ${totalDataBytes}\n  },\n  "weight_map": {\n` + lines.join(',\n') + `\n  }\n}\n`;
  }
  return { files, indexJson, totalDataBytes };
}

/**
 * Writes a planned layout to a sink tensor by tensor, in order, holding nothing but the
 * tensor currently being written. Calls must be sequential (await each writeTensor).
 */
export class SafetensorsStreamWriter {
  private fileIdx = 0;
  private specIdx = 0;
  private current: FileWriter | undefined;
  private busy = false;
  private failed: unknown = undefined;
  private done = false;

  constructor(
    private readonly sink: BundleSink,
    private readonly layout: ShardLayout,
  ) {}

  private nextSpec(): { file: ShardFile; spec: TensorSpec } | undefined {
    // Skip files with no tensors (only possible for an empty layout); finish() writes them.
    let fi = this.fileIdx;
    let si = this.specIdx;
    while (fi < this.layout.files.length && si >= this.layout.files[fi].specs.length) {
      fi++;
      si = 0;
    }
    if (fi >= this.layout.files.length) return undefined;
    return { file: this.layout.files[fi], spec: this.layout.files[fi].specs[si] };
  }

  private guard(what: string): void {
    if (this.failed !== undefined) throw new Error(`SafetensorsStreamWriter.${what}: an earlier write failed`, { cause: this.failed });
    if (this.done) throw new Error(`SafetensorsStreamWriter.${what}: already finished`);
    if (this.busy) throw new Error(`SafetensorsStreamWriter.${what}: called before the previous call finished; await each call`);
  }

  /** Write the header of the current file if nothing of it is written yet, and close finished files. */
  private async step(): Promise<void> {
    while (this.fileIdx < this.layout.files.length) {
      const file = this.layout.files[this.fileIdx];
      if (!this.current) {
        this.current = await this.sink.createFile(file.fileName, file.size);
        await this.current.write(file.header);
      }
      if (this.specIdx < file.specs.length) return;
      const w = this.current;
      this.current = undefined;
      this.fileIdx++;
      this.specIdx = 0;
      await w.close();
    }
  }

  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    this.guard('writeTensor');
    const spec = this.expect(name);
    const want = tensorSpecBytes(spec);
    if (bytes.length !== want) {
      throw new Error(
        `SafetensorsStreamWriter.writeTensor: tensor ${name} has ${bytes.length} bytes; expected ${want} (${spec.dtype} ${JSON.stringify(spec.shape)})`,
      );
    }
    if (this.open) throw new Error(`SafetensorsStreamWriter.writeTensor: got tensor ${name} while ${this.open.name} is still being written`);
    await this.run(async () => {
      await this.step(); // opens the file (header) and skips any empty ones
      if (bytes.length > 0) await this.current!.write(bytes);
      this.specIdx++;
      await this.step(); // closes the file when this was its last tensor
    });
  }

  /** The next planned tensor's spec, checking `name` is it. */
  private expect(name: string): TensorSpec {
    const next = this.nextSpec();
    if (!next) throw new Error(`SafetensorsStreamWriter.writeTensor: got tensor ${name} but every planned tensor is already written`);
    if (next.spec.name !== name) {
      throw new Error(`SafetensorsStreamWriter.writeTensor: got tensor ${name} out of order; expected ${next.spec.name} next (in ${next.file.fileName})`);
    }
    return next.spec;
  }

  /** The tensor being written in pieces: its name, the bytes it must have and those written. */
  private open: { name: string; want: number; got: number } | null = null;

  /**
   * Start writing the next planned tensor in pieces (`writeChunk`, then `endTensor`), so a
   * tensor never has to be whole in memory. Calls must be sequential.
   */
  async beginTensor(name: string): Promise<void> {
    this.guard('beginTensor');
    if (this.open) throw new Error(`SafetensorsStreamWriter.beginTensor: got tensor ${name} while ${this.open.name} is still being written`);
    const spec = this.expect(name);
    await this.run(() => this.step()); // opens the file (header) and skips any empty ones
    this.open = { name, want: tensorSpecBytes(spec), got: 0 };
  }

  /** The next bytes of the tensor `beginTensor` started. */
  async writeChunk(bytes: Uint8Array): Promise<void> {
    this.guard('writeChunk');
    const open = this.open;
    if (!open) throw new Error('SafetensorsStreamWriter.writeChunk: no tensor is being written; call beginTensor first');
    if (open.got + bytes.length > open.want) {
      throw new Error(`SafetensorsStreamWriter.writeChunk: tensor ${open.name} would get ${open.got + bytes.length} bytes; expected ${open.want}`);
    }
    if (bytes.length === 0) return;
    await this.run(() => this.current!.write(bytes));
    open.got += bytes.length;
  }

  /** Finish the tensor `beginTensor` started: all its bytes must have been written. */
  async endTensor(): Promise<void> {
    this.guard('endTensor');
    const open = this.open;
    if (!open) throw new Error('SafetensorsStreamWriter.endTensor: no tensor is being written');
    if (open.got !== open.want) throw new Error(`SafetensorsStreamWriter.endTensor: tensor ${open.name} got ${open.got} bytes; expected ${open.want}`);
    this.open = null;
    this.specIdx++;
    await this.run(() => this.step()); // closes the file when this was its last tensor
  }

  private async run(f: () => Promise<void>): Promise<void> {
    this.busy = true;
    try {
      await f();
    } catch (err) {
      this.failed = err;
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Check every tensor was written, write any tensor-less file and the shard index. */
  async finish(): Promise<void> {
    this.guard('finish');
    if (this.open) throw new Error(`SafetensorsStreamWriter.finish: tensor ${this.open.name} is still being written`);
    const next = this.nextSpec();
    if (next) {
      let remaining = 0;
      for (let i = this.fileIdx; i < this.layout.files.length; i++) remaining += this.layout.files[i].specs.length;
      remaining -= this.specIdx;
      throw new Error(`SafetensorsStreamWriter.finish: ${remaining} tensor(s) not written yet; next expected is ${next.spec.name}`);
    }
    this.busy = true;
    try {
      await this.step();
      if (this.layout.indexJson !== undefined) {
        const bytes = new TextEncoder().encode(this.layout.indexJson);
        const w = await this.sink.createFile(INDEX_FILE, bytes.length);
        await w.write(bytes);
        await w.close();
      }
      this.done = true;
    } catch (err) {
      this.failed = err;
      throw err;
    } finally {
      this.busy = false;
    }
  }
}
