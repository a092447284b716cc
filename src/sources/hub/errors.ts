import { InputError } from '../../core/errors';

/**
 * A Hub file's ETag changed between range reads. Bytes already handed out belong to the old
 * version and cannot be taken back, so the reader refuses to continue (never splices);
 * the caller restarts the file (`HubModelSource.readFile` does this by itself).
 */
export class FileChangedError extends Error {
  constructor(
    readonly path: string,
    readonly oldEtag: string,
    readonly newEtag: string | undefined,
  ) {
    super(`${path} changed on the Hub while it was being read (ETag ${oldEtag} → ${newEtag ?? 'unknown'}); restart reading it from the beginning`);
    this.name = 'FileChangedError';
  }
}

/** Retries exhausted on network errors / 5xx / truncated bodies. */
export class HubNetworkError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubNetworkError';
  }
}

export interface HubErrorContext {
  repo: string;
  revision: string;
  hubUrl: string;
  hasToken: boolean;
  /** Set for file requests. */
  path?: string;
  /** X-Error-Code the Hub sent (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo). */
  code?: string | null;
}

/** The message for an HTTP failure status; never includes the token (it is never passed in). */
export function hubStatusError(status: number, ctx: HubErrorContext): Error {
  const { repo, revision, hubUrl, path, code } = ctx;
  const file = path ? { file: path } : {};
  if (status === 401) {
    if (ctx.hasToken) {
      return new InputError(
        `Access to ${repo} was refused (HTTP 401): the Hugging Face token was not accepted. Check that it is valid and has read access, or that the repository exists.`,
        file,
      );
    }
    return new InputError(
      `${repo} needs a Hugging Face access token (HTTP 401): the repository is gated or private (or does not exist). Enter an hf_… token with read access${code === 'GatedRepo' ? ' after accepting the model\'s terms on its page' : ''}.`,
      file,
    );
  }
  if (status === 403) {
    return new InputError(
      `Access to ${repo} is forbidden (HTTP 403): the repository is gated and this token has not been granted access. Request access on ${hubUrl}/${repo} (or use a token that has it), then retry.`,
      file,
    );
  }
  if (status === 404) {
    if (code === 'RevisionNotFound') {
      return new InputError(`Revision "${revision}" does not exist in ${repo} (no such branch, tag or commit).`, file);
    }
    if (path && code !== 'RepoNotFound') {
      return new InputError(`File "${path}" was not found in ${repo} at revision ${revision}.`, file);
    }
    return new InputError(`Repository "${repo}" was not found on ${hubUrl} (check the spelling: owner/name).`, file);
  }
  return new HubNetworkError(`The Hub answered HTTP ${status} for ${path ? `${path} in ` : ''}${repo}@${revision}.`, status);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
