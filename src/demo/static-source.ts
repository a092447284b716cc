/**
 * ModelSource over a demo model's static files (public/demo/<name>/), read with fetch(). Range
 * requests keep the pipeline's streaming shape; a server that ignores Range (answers 200) gets
 * the whole file fetched once and sliced, which is fine for files this small.
 */
import { CancelledError, InputError } from '../core/errors';
import type { ByteSource, ModelSource } from '../core/ports';
import type { DemoModel } from './catalog';

export function createStaticSource(baseUrl: string, model: DemoModel, fetchFn: typeof fetch = globalThis.fetch.bind(globalThis)): ModelSource {
  const folder = new URL(`${encodeURIComponent(model.name)}/`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const sizes = new Map(model.files.map((f) => [f.path, f.size]));
  const whole = new Map<string, Promise<Uint8Array>>();

  const open = async (path: string): Promise<ByteSource> => {
    const size = sizes.get(path);
    if (size === undefined) throw new InputError(`${path} is not part of the demo model ${model.name}`, { file: path });
    const url = new URL(path.split('/').map(encodeURIComponent).join('/'), folder).href;
    const fail = (what: string): never => {
      throw new InputError(`demo model ${model.name}: ${path} ${what}; rebuild the demo files with \`npm run demo\``, { file: path });
    };
    const wholeFile = (signal?: AbortSignal): Promise<Uint8Array> => {
      let p = whole.get(path);
      if (!p) {
        p = fetchFn(url, { signal }).then(async (r) => {
          if (!r.ok) fail(`could not be fetched (HTTP ${r.status})`);
          return new Uint8Array(await r.arrayBuffer());
        });
        whole.set(path, p);
        p.catch(() => whole.delete(path));
      }
      return p;
    };
    return {
      name: path,
      size,
      async read(offset, length, signal) {
        if (signal?.aborted) throw new CancelledError();
        if (offset < 0 || length < 0 || offset + length > size) fail(`read [${offset}, ${offset + length}) is outside its ${size} bytes`);
        if (length === 0) return new Uint8Array(0);
        let bytes: Uint8Array;
        try {
          if (whole.has(path)) {
            bytes = (await wholeFile(signal)).subarray(offset, offset + length);
          } else {
            const r = await fetchFn(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` }, signal });
            if (r.status === 206) bytes = new Uint8Array(await r.arrayBuffer());
            else if (r.ok) {
              await r.body?.cancel().catch(() => undefined);
              bytes = (await wholeFile(signal)).subarray(offset, offset + length);
            } else return fail(`could not be fetched (HTTP ${r.status})`);
          }
        } catch (e) {
          if (signal?.aborted) throw new CancelledError();
          throw e;
        }
        if (bytes.length !== length) fail(`gave ${bytes.length} bytes where ${length} were asked for (is index.json stale?)`);
        return bytes;
      },
    };
  };

  return {
    label: `demo/${model.name}`,
    listFiles: async () => model.files.map((f) => f.path),
    open,
  };
}
