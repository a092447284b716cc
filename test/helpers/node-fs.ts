// Node filesystem adapters for the project's ByteSource / ModelSource / BundleSink interfaces,
// for tests only (the app's own sources and sinks live in src/sources and src/sinks).
import { mkdirSync, openSync, closeSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { BundleSink, ByteSource, FileWriter, ModelSource } from '../../src/core/safetensors/types';

/** A local file read with positioned reads. */
export function nodeFileSource(file: string, name = path.basename(file)): ByteSource {
  const size = statSync(file).size;
  return {
    name,
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new Error(`${file}: read [${offset}, ${offset + length}) outside ${size} bytes`);
      }
      const out = new Uint8Array(length);
      const fd = openSync(file, 'r');
      try {
        let done = 0;
        while (done < length) {
          const n = readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw new Error(`${file}: unexpected end of file at ${offset + done}`);
          done += n;
        }
      } finally {
        closeSync(fd);
      }
      return out;
    },
  };
}

/** A model folder (top level only, like an HF snapshot). */
export function nodeDirSource(dir: string): ModelSource {
  return {
    label: dir,
    async listFiles() {
      return readdirSync(dir).filter((f) => statSync(path.join(dir, f)).isFile());
    },
    async open(p: string) {
      return nodeFileSource(path.join(dir, p), p);
    },
  };
}

/** Writes a bundle into `dir` (created if needed); `abort` deletes the files it wrote. */
export function nodeDirSink(dir: string): BundleSink {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  return {
    label: dir,
    async createFile(p: string, size?: number): Promise<FileWriter> {
      const full = path.join(dir, p);
      mkdirSync(path.dirname(full), { recursive: true });
      const fh = await open(full, 'w');
      written.push(full);
      let total = 0;
      return {
        async write(chunk: Uint8Array) {
          await fh.write(chunk);
          total += chunk.length;
        },
        async close() {
          await fh.close();
          if (size !== undefined && total !== size) throw new Error(`${full}: declared ${size} bytes, wrote ${total}`);
        },
      };
    },
    async finalize() {},
    async abort() {
      for (const f of written) rmSync(f, { force: true });
    },
  };
}
