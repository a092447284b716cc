import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { InputError } from '../core/errors';
import type { RunTarget } from '../core/link';
import type { ModelSource } from '../core/ports';
import { createNodeFsSource } from '../sources/node-fs-source-node';
import { realpathLoose } from './paths';

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * `--model` is a local folder when one exists at that path, else a Hub repo id ("org/name").
 * The run target names a folder by its base name (no absolute paths in the bundle), a repo by
 * its id and resolved commit; a Hugging Face cache snapshot by the repo and commit it holds.
 * `localRoots` are the real folders the model's files live in (the output must stay out of them).
 */
export async function openCliSource(
  model: string,
  opts: { revision?: string; hubUrl?: string; token?: string; signal?: AbortSignal; onNotice?: (msg: string) => void },
): Promise<{ source: ModelSource; target: RunTarget; localRoots: string[] }> {
  const st = await stat(model).catch(() => undefined);
  if (st?.isDirectory() || (st?.isFile() && model.endsWith('.safetensors'))) {
    if (opts.revision) throw new InputError(`--revision applies to Hub repos; ${model} is a local ${st.isFile() ? 'file' : 'folder'}`);
    const path = resolve(model);
    const source = await createNodeFsSource(path);
    const folder = st.isDirectory() ? path : dirname(path);
    const localRoots = [await realpathLoose(folder)];
    if (source.hfCache) {
      // The whole models--org--name folder: its blobs are the files' real contents.
      localRoots.push(await realpathLoose(resolve(folder, '..', '..')));
      opts.onNotice?.(`${model} is a Hugging Face cache snapshot of ${source.hfCache.repo} at ${source.hfCache.revision}`);
      return { source, target: { model: source.hfCache.repo, revision: source.hfCache.revision }, localRoots };
    }
    return { source, target: { model: basename(folder) }, localRoots };
  }
  if (!REPO_ID.test(model)) {
    throw new InputError(`--model ${model}: no such folder, and not a Hub repo id of the form org/name`);
  }
  // Both readings are possible; say which one is taken, so a mistyped local path is noticed.
  const { createHubSource, stripUrlCredentials } = await import('../sources/hub/hub-source');
  const { url: hubUrl, token: urlToken } = stripUrlCredentials(opts.hubUrl ?? 'https://huggingface.co');
  if (urlToken !== undefined) {
    opts.onNotice?.('took the Hub token from the credentials in --hub-url (they are not shown or stored); prefer --token or HF_TOKEN');
  }
  opts.onNotice?.(`no local folder named ${model}; reading the Hub repo ${model} from ${hubUrl}`);
  try {
    const source = await createHubSource({
      repo: model,
      revision: opts.revision ?? 'main',
      hubUrl,
      token: opts.token ?? urlToken,
      signal: opts.signal,
      onNotice: opts.onNotice,
    });
    return { source, target: { model, revision: source.revision, hub: opts.hubUrl === undefined ? undefined : hubUrl }, localRoots: [] };
  } catch (e) {
    if (e instanceof InputError && /^Repository ".*" was not found/.test(e.message)) {
      throw new InputError(`${e.message} There is no local folder ${resolve(model)} either.`, e);
    }
    throw e;
  }
}
