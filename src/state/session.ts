/**
 * What must not (or cannot) be in the store: the Hub token (memory only — never in the URL,
 * localStorage or logs), dropped File objects, the finished zip, a picked folder handle, and
 * the worker client.
 */
import type { PathedFile } from '../sources/files/files-source';
import { createPipelineClient, type PipelineClient } from '../worker/client';

let client: PipelineClient | null = null;

export const session: {
  token: string;
  files: PathedFile[];
  zip: Blob | null;
  folder: FileSystemDirectoryHandle | null;
  /** "Check quality": a dropped evaluation text, and a dropped bundle + original pair. */
  qualityText: File | null;
  qualityOriginal: PathedFile[];
  qualityBundle: PathedFile[];
  /** GPTQ: a dropped calibration text or calib.json. */
  calibFile: File | null;
} = { token: '', files: [], zip: null, folder: null, qualityText: null, qualityOriginal: [], qualityBundle: [], calibFile: null };

export function pipeline(): PipelineClient {
  client ??= createPipelineClient();
  return client;
}
