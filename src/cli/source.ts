import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { InputError } from '../core/errors';
import type { RunTarget } from '../core/link';
import type { ModelSource } from '../core/ports';
import { createNodeFsSource } from '../sources/node-fs-source-node';
import { createHubSource } from '../sources/hub/hub-source';

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * `--model` is a local folder when one exists at that path, else a Hub repo id ("org/name").
 * The run target names a folder by its base name (no absolute paths in the bundle), a repo by
 * its id and resolved commit.
 */
export async function openCliSource(
  model: string,
  opts: { revision?: string; hubUrl?: string; token?: string; signal?: AbortSignal; onProgress?: (bytes: number) => void },
): Promise<{ source: ModelSource; target: RunTarget }> {
  const isDir = await stat(model).then((s) => s.isDirectory(), () => false);
  if (isDir) {
    if (opts.revision) throw new InputError(`--revision applies to Hub repos; ${model} is a local folder`);
    const source = await createNodeFsSource(resolve(model));
    return { source, target: { model: basename(resolve(model)) } };
  }
  if (!REPO_ID.test(model)) {
    throw new InputError(`--model ${model}: no such folder, and not a Hub repo id of the form org/name`);
  }
  const source = await createHubSource({
    repo: model,
    revision: opts.revision ?? 'main',
    hubUrl: opts.hubUrl,
    token: opts.token,
    signal: opts.signal,
  });
  return { source, target: { model, revision: source.revision, hub: opts.hubUrl } };
}
