/** Runs the CLI on a demo folder and compares an app-made zip with its output, file by file. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { expect } from 'vitest';
import { ROOT } from './browser';

export function cliBundle(model: string, out: string, extra: string[] = []): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/quantize.ts', '--model', `public/demo/${model}`, '--out', out, '--quiet', ...extra], { cwd: ROOT, encoding: 'utf8' });
}

/** Every file of the zip equals the CLI's; the CLI's manifest.sha256 is compared when the zip has one too. */
export function compareWithCli(zipBytes: Uint8Array, cliDir: string): string[] {
  const zip = unzipSync(zipBytes);
  const zipFiles = Object.keys(zip).sort();
  const cliFiles = readdirSync(cliDir).sort().filter((f) => f !== 'manifest.sha256' || zipFiles.includes(f));
  expect(zipFiles).toEqual(cliFiles);
  for (const f of zipFiles) {
    const a = zip[f];
    const b = new Uint8Array(readFileSync(path.join(cliDir, f)));
    expect(a.length, `${f} size`).toBe(b.length);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), `${f} bytes`).toBe(0);
  }
  return zipFiles;
}
