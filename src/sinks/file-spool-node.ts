// Node's spool for tiled processing: one temp file per tensor, removed on dispose (and left to
// the OS temp cleaner only if the process dies mid-tensor).
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spool, SpoolFactory } from '../core/ports';

/** A spool in a fresh temp folder under `dir` (default: the OS temp folder). */
export function fileSpool(dir: string = tmpdir()): SpoolFactory {
  return async (size: number): Promise<Spool> => {
    const folder = await mkdtemp(join(dir, 'quarot-spool-'));
    const path = join(folder, 'tensor.f32');
    const fh = await open(path, 'w+');
    let closed = false;
    return {
      async write(offset, bytes) {
        if (offset < 0 || offset + bytes.length > size) throw new RangeError(`file spool ${path}: write [${offset}, ${offset + bytes.length}) outside ${size} bytes`);
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, offset + done);
          done += bytesWritten;
        }
      },
      async read(offset, length) {
        if (offset < 0 || offset + length > size) throw new RangeError(`file spool ${path}: read [${offset}, ${offset + length}) outside ${size} bytes`);
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new Error(`file spool ${path}: read ${done} of ${length} bytes at ${offset}; the temp file is shorter than what was written`);
          done += bytesRead;
        }
        return out;
      },
      async dispose() {
        if (closed) return;
        closed = true;
        await fh.close();
        await rm(folder, { recursive: true, force: true });
      },
    };
  };
}
