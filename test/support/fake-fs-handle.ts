/**
 * In-memory stand-in for FileSystemDirectoryHandle / FileSystemFileHandle, for unit tests of
 * the browser-only sinks under Node. Flags switch off move() or createWritable to exercise
 * each fallback; `quotaBytes` makes writes fail like a full origin.
 */
export interface FakeFsOptions {
  dirMove?: boolean;
  fileMove?: boolean;
  syncAccess?: boolean;
  /** No createWritable (Safari's OPFS before Safari 26: sync access handles only). */
  noWritable?: boolean;
  quotaBytes?: number;
}

interface Usage {
  bytes: number;
}

function quotaError(): Error {
  const e = new Error('The quota has been exceeded.');
  e.name = 'QuotaExceededError';
  return e;
}

export class FakeFile {
  readonly kind = 'file';
  data = new Uint8Array(0);
  move?: (parent: FakeDir, name: string) => Promise<void>;
  createSyncAccessHandle?: () => Promise<unknown>;
  constructor(
    public name: string,
    public parent: FakeDir,
    private readonly o: FakeFsOptions,
    private readonly usage: Usage,
  ) {
    if (o.fileMove) {
      this.move = async (dest, newName) => {
        this.parent.children.delete(this.name);
        this.name = newName;
        this.parent = dest;
        dest.children.set(newName, this);
      };
    }
    if (o.noWritable) Object.defineProperty(this, 'createWritable', { value: undefined });
    if (o.syncAccess) {
      this.createSyncAccessHandle = async () => {
        let buf = new Uint8Array(0);
        return {
          write: (b: Uint8Array, opt?: { at?: number }) => {
            const at = opt?.at ?? buf.length;
            if (this.o.quotaBytes !== undefined && this.usage.bytes + b.length > this.o.quotaBytes) throw quotaError();
            this.usage.bytes += b.length;
            if (at + b.length > buf.length) {
              const nb = new Uint8Array(at + b.length);
              nb.set(buf);
              buf = nb;
            }
            buf.set(b, at);
            return b.length;
          },
          flush: () => {
            this.data = buf.slice();
          },
          close: () => {
            this.data = buf.slice();
          },
        };
      };
    }
  }
  async getFile(): Promise<File> {
    return new File([this.data.slice()], this.name);
  }
  async createWritable() {
    const chunks: Uint8Array[] = [];
    let aborted = false;
    return {
      write: async (data: Uint8Array | ArrayBuffer) => {
        const c = data instanceof Uint8Array ? data : new Uint8Array(data);
        if (this.o.quotaBytes !== undefined && this.usage.bytes + c.length > this.o.quotaBytes) throw quotaError();
        this.usage.bytes += c.length;
        chunks.push(c.slice());
      },
      close: async () => {
        if (aborted) return;
        const n = chunks.reduce((s, c) => s + c.length, 0);
        const out = new Uint8Array(n);
        let o = 0;
        for (const c of chunks) {
          out.set(c, o);
          o += c.length;
        }
        // Like the real API, content becomes visible only on close.
        this.data = out;
      },
      abort: async () => {
        aborted = true;
      },
    };
  }
}

export class FakeDir {
  readonly kind = 'directory';
  children = new Map<string, FakeDir | FakeFile>();
  move?: (parent: FakeDir, name: string) => Promise<void>;
  constructor(
    public name: string,
    public parent: FakeDir | undefined,
    private readonly o: FakeFsOptions = {},
    private readonly usage: Usage = { bytes: 0 },
  ) {
    if (o.dirMove) {
      this.move = async (dest, newName) => {
        if (dest.children.has(newName)) throw Object.assign(new Error('exists'), { name: 'InvalidModificationError' });
        this.parent?.children.delete(this.name);
        this.name = newName;
        this.parent = dest;
        dest.children.set(newName, this);
      };
    }
  }
  async getDirectoryHandle(name: string, opt?: { create?: boolean }): Promise<FakeDir> {
    const c = this.children.get(name);
    if (c instanceof FakeDir) return c;
    if (c) throw Object.assign(new Error('type mismatch'), { name: 'TypeMismatchError' });
    if (!opt?.create) throw Object.assign(new Error(`${name} not found`), { name: 'NotFoundError' });
    const d = new FakeDir(name, this, this.o, this.usage);
    this.children.set(name, d);
    return d;
  }
  async getFileHandle(name: string, opt?: { create?: boolean }): Promise<FakeFile> {
    const c = this.children.get(name);
    if (c instanceof FakeFile) return c;
    if (c) throw Object.assign(new Error('type mismatch'), { name: 'TypeMismatchError' });
    if (!opt?.create) throw Object.assign(new Error(`${name} not found`), { name: 'NotFoundError' });
    const f = new FakeFile(name, this, this.o, this.usage);
    this.children.set(name, f);
    return f;
  }
  async removeEntry(name: string, opt?: { recursive?: boolean }): Promise<void> {
    const c = this.children.get(name);
    if (!c) throw Object.assign(new Error(`${name} not found`), { name: 'NotFoundError' });
    if (c instanceof FakeDir && c.children.size > 0 && !opt?.recursive) throw Object.assign(new Error('not empty'), { name: 'InvalidModificationError' });
    this.children.delete(name);
  }
  async *keys(): AsyncIterable<string> {
    yield* [...this.children.keys()];
  }
  /** path → bytes of every file below (test helper). */
  flat(prefix = ''): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [n, c] of this.children) {
      const p = prefix ? `${prefix}/${n}` : n;
      if (c instanceof FakeFile) out.set(p, c.data);
      else for (const [k, v] of c.flat(p)) out.set(k, v);
    }
    return out;
  }
}

export function fakeRoot(o: FakeFsOptions = {}): FakeDir & FileSystemDirectoryHandle {
  return new FakeDir('root', undefined, o) as unknown as FakeDir & FileSystemDirectoryHandle;
}
