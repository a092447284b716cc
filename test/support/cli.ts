// Runs the quantize CLI as a real child process (async, so a mock hub in the test process keeps answering).
import { spawn, type SpawnOptions } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');

export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; onStderr?: (all: string) => void; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/quantize.ts'), ...args], opts);
}

export function runProcess(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; detached?: boolean; onStart?: (pid: number) => void; onStderr?: (all: string) => void; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const spawnOpts: SpawnOptions = { cwd: ROOT, env: opts.env ?? process.env, detached: opts.detached };
    if (opts.uid !== undefined) spawnOpts.uid = opts.uid;
    if (opts.gid !== undefined) spawnOpts.gid = opts.gid;
    const child = spawn(command, args, spawnOpts);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr);
    });
    if (child.pid !== undefined) opts.onStart?.(child.pid);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, signal, stdout, stderr });
    });
  });
}
