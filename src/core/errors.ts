/**
 * A problem with the user's input (model files, config, settings). The message names the
 * file and/or tensor and says what was expected; the UI and the CLI show it as is.
 */
export class InputError extends Error {
  readonly file?: string;
  readonly tensor?: string;
  constructor(message: string, where: { file?: string; tensor?: string } = {}) {
    super(message);
    this.name = 'InputError';
    this.file = where.file;
    this.tensor = where.tensor;
  }
}

/**
 * A problem with the machine or the network rather than the input or the code: the disk is
 * full or read-only, a folder is not writable, the output folder exists, a host cannot be
 * reached. The message names the path or host and says what to do; shown as is, without a stack.
 */
export class EnvironmentError extends Error {
  readonly path?: string;
  readonly code?: string;
  constructor(message: string, where: { path?: string; code?: string } = {}) {
    super(message);
    this.name = 'EnvironmentError';
    this.path = where.path;
    this.code = where.code;
  }
}

/** The run was cancelled through its AbortSignal. */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/**
 * A value from the user's input, shortened for an error message: a hostile file can hold a
 * 50 MB tensor name, and a message that echoes it whole helps no one.
 */
export function clipForMessage(text: string, max = 120): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
