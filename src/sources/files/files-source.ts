/**
 * ModelSource over files the person dropped on the page or picked with a file input.
 * Reads are `File.slice(...).arrayBuffer()`, so nothing is loaded whole.
 */
import { CancelledError, InputError } from '../../core/errors';
import type { ByteSource, ModelSource } from '../../core/ports';
import { checkRange } from '../util';
import { validateModelFileSet, type ModelFileSetReport } from '../validate';

export interface PathedFile {
  /** Relative path with "/" separators, e.g. "Qwen2.5-0.5B/config.json" or "config.json". */
  path: string;
  file: Blob;
}

export interface FilesModelSource extends ModelSource {
  readonly files: PathedFile[];
  /** Completeness check (reads the shard index when there is one). */
  validate(): Promise<ModelFileSetReport>;
}

/**
 * Drops the folder everyone shares ("Qwen2.5-0.5B/…" → "…"), so dropping a model folder and
 * dropping its files give the same paths.
 */
export function stripCommonFolder(files: PathedFile[]): PathedFile[] {
  const norm = files.map((f) => ({ ...f, path: f.path.replace(/\\/g, '/').replace(/^\/+/, '') }));
  for (;;) {
    const first = norm[0]?.path.split('/');
    if (!first || first.length < 2) return norm;
    const top = first[0] + '/';
    if (!norm.every((f) => f.path.startsWith(top))) return norm;
    for (const f of norm) f.path = f.path.slice(top.length);
  }
}

/** From an <input type=file> (with or without `webkitdirectory`). */
export function filesFromFileList(list: ArrayLike<File>): PathedFile[] {
  const out: PathedFile[] = [];
  for (let i = 0; i < list.length; i++) {
    const f = list[i];
    out.push({ path: f.webkitRelativePath || f.name, file: f });
  }
  return out;
}

export function createFilesSource(input: PathedFile[] | ArrayLike<File>, label = 'dropped files'): FilesModelSource {
  const raw = Array.isArray(input) && (input.length === 0 || 'path' in input[0]) ? (input as PathedFile[]) : filesFromFileList(input as ArrayLike<File>);
  // OS clutter that rides along with dropped folders.
  const files = stripCommonFolder(raw).filter((f) => !f.path.split('/').some((s) => s.startsWith('.') || s === '__MACOSX'));
  const byPath = new Map<string, Blob>();
  for (const f of files) {
    if (byPath.has(f.path)) throw new InputError(`${f.path} was given twice`, { file: f.path });
    byPath.set(f.path, f.file);
  }
  const open = async (path: string): Promise<ByteSource> => {
    const blob = byPath.get(path);
    if (!blob) throw new InputError(`${path} is not among the ${label}`, { file: path });
    const size = blob.size;
    return {
      name: path,
      size,
      async read(offset, length, signal) {
        checkRange(path, size, offset, length);
        if (signal?.aborted) throw new CancelledError();
        let buf: ArrayBuffer;
        try {
          buf = await blob.slice(offset, offset + length).arrayBuffer();
        } catch (e) {
          // Browsers throw NotReadableError when the file changed or was moved after being picked.
          throw new InputError(`${path} can no longer be read (was it changed, moved or deleted after it was chosen?): ${e instanceof Error ? e.message : String(e)}`, { file: path });
        }
        if (buf.byteLength !== length) throw new InputError(`${path}: read ${buf.byteLength} of ${length} bytes at offset ${offset}; the file is truncated`, { file: path });
        return new Uint8Array(buf);
      },
    };
  };
  return {
    label,
    files,
    listFiles: async () => [...byPath.keys()].sort(),
    open,
    async validate() {
      return validateModelFileSet([...byPath.keys()], async (p) => {
        const b = await open(p);
        return new TextDecoder().decode(await b.read(0, b.size));
      });
    },
  };
}
