/** Opens the ModelSource a SourceSpec describes, inside the worker. */
import { InputError } from '../core/errors';
import type { ModelSource } from '../core/ports';
import { createFilesSource } from '../sources/files/files-source';
import { createHubSource, type HubModelSource, type HubProgress } from '../sources/hub/hub-source';
import { createStaticSource } from '../demo/static-source';
import type { SourceSpec } from './protocol';

export interface OpenedSource {
  source: ModelSource;
  /** Hub sources: stop their requests when done. */
  close(): void;
  hub?: HubModelSource;
}

export async function openSource(spec: SourceSpec, opts: { signal?: AbortSignal; onDownload?: (p: HubProgress) => void } = {}): Promise<OpenedSource> {
  if (spec.kind === 'demo') return { source: createStaticSource(spec.baseUrl, spec.model), close() {} };
  if (spec.kind === 'files') {
    const source = createFilesSource(spec.files, spec.label);
    const check = await source.validate();
    if (!check.ok) throw new InputError(check.message, { file: check.missing[0] });
    return { source, close() {} };
  }
  const hub = await createHubSource({
    repo: spec.repo,
    revision: spec.revision || undefined,
    hubUrl: spec.hubUrl || undefined,
    token: spec.token || undefined,
    signal: opts.signal,
    onProgress: opts.onDownload,
  });
  return { source: hub, hub, close: () => hub.close() };
}
