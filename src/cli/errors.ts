/**
 * What the CLI does with an error: a one-line message and exit 2 for problems with the input,
 * the machine or the network (the user can fix those); a stack trace and exit 1 for anything
 * else, which is a bug.
 */
import { EnvironmentError, InputError } from '../core/errors';
import { fsErrorAdvice } from '../sinks/fs-sink-node';

/** Errors from src/sources/hub: named, not imported, so the CLI does not load the hub client for a local run. */
const HUB_ERRORS = new Set(['HubNetworkError', 'FileChangedError']);

export function userFacingMessage(e: unknown): string | undefined {
  let msg: string | undefined;
  if (e instanceof InputError || e instanceof EnvironmentError) msg = e.message;
  else if (e instanceof Error && HUB_ERRORS.has(e.name)) msg = e.message;
  else {
    const err = e as NodeJS.ErrnoException | undefined;
    const advice = fsErrorAdvice(err?.code);
    if (advice && err?.path) msg = `cannot ${err.syscall ?? 'use'} ${err.path}: ${advice} (${err.code})`;
  }
  return msg?.replace(/\s*\n\s*/g, ' ');
}
