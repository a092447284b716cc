/**
 * The CLI against what the reliability probe (issue 10) found: each case reproduces the
 * original failure with a real child process and checks the exit code, the one-line message
 * and the folders left behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PARTIAL_MARKER } from '../src/sinks/fs-sink-node';
import { runCli, runProcess, ROOT } from './support/cli';
import { startMockHub } from './support/mock-hub';
import { makeTinyQwen2, writeTinyQwen2 } from './support/tiny-qwen2';

const tmp = mkdtempSync(join(tmpdir(), 'quarot-cli-rel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
async function tinyModel(opts: Partial<Parameters<typeof makeTinyQwen2>[0]> = {}): Promise<string> {
  const dir = join(tmp, `model-${n++}`);
  await writeTinyQwen2(dir, makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3, ...opts }), { dtype: 'F32' });
  writeFileSync(join(dir, 'tokenizer.json'), '{"version":"1.0"}');
  return dir;
}

/** A one-line error on stderr, no stack trace. */
function expectOneLineError(stderr: string, message: RegExp): void {
  const errors = stderr.split('\n').filter((l) => l.startsWith('error: '));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(message);
  expect(stderr).not.toMatch(/^\s+at /m);
}

function leftovers(out: string): string[] {
  const parent = join(out, '..');
  const base = out.split('/').pop()!;
  return existsSync(parent) ? readdirSync(parent).filter((f) => f === base || f.startsWith(`${base}.partial`) || f.startsWith(`${base}.old`)) : [];
}

function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      h.update(relative(dir, p));
      try {
        h.update(readFileSync(p));
      } catch {
        walk(p);
      }
    }
  };
  walk(dir);
  return h.digest('hex');
}

function readSafetensorsJson(file: string): { len: number; buf: Buffer; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { len, buf, header: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) };
}

describe('quantize CLI: input that must be refused', () => {
  it('a header length pointing into its own padding: exit 2, not a NaN bundle with exit 0', async () => {
    const model = await tinyModel();
    const file = join(model, 'model.safetensors');
    // Re-pad the header with spaces (as Hugging Face's writer does), then make the length 3 short.
    const { len, buf } = readSafetensorsJson(file);
    const json = Buffer.from(buf.subarray(8, 8 + len).toString('utf8').trimEnd() + '        ');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length - 3));
    writeFileSync(file, Buffer.concat([prefix, json, buf.subarray(8 + len)]));
    const out = join(tmp, `nan-${n++}`);
    const r = await runCli(['--model', model, '--out', out, '--quiet']);
    expectOneLineError(r.stderr, /model\.safetensors: the data section after the \d+-byte header is \d+ bytes, but the tensors cover only \d+; 3 bytes at the end belong to no tensor/);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain('mean relative error');
    expect(leftovers(out)).toEqual([]);
  });

  it('one Inf or NaN weight: exit 2 naming the tensor and the first bad element', async () => {
    for (const [value, shown] of [[Infinity, '\\+Inf'], [NaN, 'NaN']] as const) {
      const model = await tinyModel();
      const file = join(model, 'model.safetensors');
      const { len, buf, header } = readSafetensorsJson(file);
      const t = header['model.layers.1.mlp.up_proj.weight'];
      const [, cols] = t.shape;
      const element = 5 * cols + 17;
      buf.writeFloatLE(value, 8 + len + t.data_offsets[0] + 4 * element);
      writeFileSync(file, buf);
      const out = join(tmp, `inf-${n++}`);
      const r = await runCli(['--model', model, '--out', out, '--quiet']);
      expectOneLineError(
        r.stderr,
        new RegExp(`tensor model\\.layers\\.1\\.mlp\\.up_proj\\.weight in file model\\.safetensors holds a non-finite value \\(${shown}\\) at element ${element} \\(index \\[5, 17\\]\\)`),
      );
      expect(r.code).toBe(2);
      expect(leftovers(out)).toEqual([]);
    }
  });

  it('num_hidden_layers 1e9, a 600 MB config.json and a Latin-1 byte: exit 2 at once', async () => {
    const huge = await tinyModel();
    const cfg = JSON.parse(readFileSync(join(huge, 'config.json'), 'utf8'));
    writeFileSync(join(huge, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 1e9 }));
    const t0 = Date.now();
    const r1 = await runCli(['--model', huge, '--out', join(tmp, `x-${n++}`), '--quiet']);
    expectOneLineError(r1.stderr, /config\.json: num_hidden_layers is 1000000000, but the checkpoint holds only \d+ tensors \(each Qwen2 layer has 12\)/);
    expect(r1.code).toBe(2);
    expect(Date.now() - t0).toBeLessThan(30_000);

    const big = await tinyModel();
    truncateSync(join(big, 'config.json'), 600_000_000); // sparse: no disk used
    const r2 = await runCli(['--model', big, '--out', join(tmp, `x-${n++}`), '--quiet']);
    expectOneLineError(r2.stderr, /config\.json in .* is 600000000 bytes; expected a small text file \(at most 16777216 bytes\)/);
    expect(r2.code).toBe(2);

    const latin = await tinyModel();
    const text = readFileSync(join(latin, 'config.json'), 'utf8').replace('"qwen2"', '"qwen2", "author": "Ren\u00e9"');
    const bytes = Buffer.from(text, 'latin1');
    writeFileSync(join(latin, 'config.json'), bytes);
    const r3 = await runCli(['--model', latin, '--out', join(tmp, `x-${n++}`), '--quiet']);
    expectOneLineError(r3.stderr, new RegExp(`config\\.json in .* is not valid UTF-8 \\(byte 0xe9 at offset ${bytes.indexOf(0xe9)}, perhaps Latin-1\\); save it as UTF-8`));
    expect(r3.code).toBe(2);
  });
});

describe('quantize CLI: output folders', () => {
  it('--out equal to, containing or inside the model folder is refused, with or without --overwrite; the model is untouched', async () => {
    const parent = join(tmp, `parent-${n++}`);
    mkdirSync(parent);
    writeFileSync(join(parent, 'unrelated.txt'), 'keep me');
    const model = join(parent, 'model');
    await writeTinyQwen2(model, makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3 }), { dtype: 'F32' });
    const before = treeHash(parent);
    for (const [out, how] of [[model, 'is'], [parent, 'contains'], [join(model, 'bundle'), 'lies inside'], [`${model}/`, 'is']] as const) {
      for (const overwrite of [true, false]) {
        const r = await runCli(['--model', model, '--out', out, '--quiet', ...(overwrite ? ['--overwrite'] : [])]);
        expectOneLineError(r.stderr, new RegExp(`--out .* ${how} the model folder .*model; write the bundle to a separate folder${overwrite ? ' \\(with --overwrite this would delete the model\\)' : '$'}`));
        expect(r.code).toBe(2);
      }
    }
    expect(treeHash(parent)).toBe(before);
    expect(readFileSync(join(parent, 'unrelated.txt'), 'utf8')).toBe('keep me');
  });

  it('an existing --out: exit 2, one line, and the message names --overwrite', async () => {
    const out = join(tmp, `exists-${n++}`);
    mkdirSync(out);
    writeFileSync(join(out, 'x'), 'x');
    const r = await runCli(['--model', await tinyModel(), '--out', out, '--quiet']);
    expectOneLineError(r.stderr, new RegExp(`^error: ${out} already exists and is not empty; choose another output folder or pass --overwrite to replace it$`));
    expect(r.code).toBe(2);
    expect(readdirSync(out)).toEqual(['x']);
  });

  it('--report inside the bundle is refused before any work; an unwritable --report exits 2 after a complete bundle', async () => {
    const model = await tinyModel();
    const out = join(tmp, `rep-${n++}`);
    const r = await runCli(['--model', model, '--out', out, '--report', join(out, 'model.safetensors'), '--quiet']);
    expectOneLineError(r.stderr, /--report .*model\.safetensors lies inside the bundle folder .*; the bundle holds only verified files/);
    expect(r.code).toBe(2);
    expect(leftovers(out)).toEqual([]);

    const noDir = await runCli(['--model', model, '--out', out, '--report', join(tmp, 'no-such-dir', 'r.json'), '--quiet']);
    expectOneLineError(noDir.stderr, /cannot write the report .*r\.json: the folder .*no-such-dir does not exist/);
    expect(noDir.code).toBe(2);
    expect(leftovers(out)).toEqual([]);

    // /dev/full: every write fails with ENOSPC.
    if (existsSync('/dev/full')) {
      const full = await runCli(['--model', model, '--out', out, '--report', '/dev/full', '--quiet']);
      expectOneLineError(full.stderr, new RegExp(`cannot write the report /dev/full: no space left on the device .* \\(ENOSPC\\); the bundle in ${out} is complete`));
      expect(full.code).toBe(2);
      expect(readdirSync(out)).toContain('manifest.sha256');
    }
  });

  it('removes its own stale <out>.partial-* folders on start, saying so, and leaves others alone', async () => {
    const out = join(tmp, `stale-${n++}`);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid that has exited
    const ours = `${out}.partial-0123456789ab`;
    mkdirSync(ours);
    writeFileSync(join(ours, PARTIAL_MARKER), JSON.stringify({ tool: 'quarot-studio', host: (await import('node:os')).hostname(), pid: dead, started: '' }));
    writeFileSync(join(ours, 'model.safetensors'), 'half');
    const foreign = `${out}.partial-ba9876543210`;
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'not ours');
    const alive = `${out}.partial-aaaaaaaaaaaa`;
    mkdirSync(alive);
    writeFileSync(join(alive, PARTIAL_MARKER), JSON.stringify({ tool: 'quarot-studio', host: (await import('node:os')).hostname(), pid: process.pid, started: '' }));
    const r = await runCli(['--model', await tinyModel(), '--out', out, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`notice: removed ${ours}, a partial bundle left by an earlier run that was killed`);
    expect(leftovers(out).sort()).toEqual([out, foreign, alive].map((p) => p.split('/').pop()).sort());
    expect(readdirSync(out)).not.toContain(PARTIAL_MARKER);
  });

  const canMount = ((): boolean => {
    if (process.getuid?.() !== 0) return false;
    const probe = mkdtempSync(join(tmpdir(), 'quarot-mount-probe-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  })();

  it.skipIf(!canMount)(`a full disk (ENOSPC) and a read-only one (EROFS): exit 2 naming the path, nothing left${canMount ? '' : ' — skipped: needs root and mount to make a small tmpfs'}`, async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'quarot-small-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', mnt]);
    try {
      const model = await tinyModel();
      const out = join(mnt, 'bundle');
      const full = await runCli(['--model', model, '--out', out, '--quiet']);
      expectOneLineError(full.stderr, new RegExp(`^error: cannot write ${mnt}/bundle\\.partial-[0-9a-f]{12}/\\S+: no space left on the device \\(disk full or quota exceeded\\); free some space or choose another output folder \\(ENOSPC\\)$`));
      expect(full.code).toBe(2);
      expect(readdirSync(mnt)).toEqual([]);

      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const ro = await runCli(['--model', model, '--out', out, '--quiet']);
      expectOneLineError(ro.stderr, new RegExp(`^error: cannot create a folder in ${mnt}: the file system is read-only; choose an output folder on a writable disk \\(EROFS\\)$`));
      expect(ro.code).toBe(2);
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('a folder that is not writable (EACCES): exit 2 naming it', async () => {
    const parent = join(tmp, `locked-${n++}`);
    mkdirSync(parent);
    chmodSync(parent, 0o555);
    const model = await tinyModel();
    chmodSync(tmp, 0o755);
    // Root ignores permissions; run the CLI as nobody then (the model must be readable for it).
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = await runCli(['--model', model, '--out', join(parent, 'out'), '--quiet'], asNobody);
    expectOneLineError(r.stderr, new RegExp(`^error: cannot create a folder in ${parent}: permission denied; choose a folder you can write to \\(EACCES\\)$`));
    expect(r.code).toBe(2);
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe('quantize CLI: cancellation', () => {
  /** A model that takes seconds on the CPU backend, so a signal lands mid-run. */
  async function slowModel(): Promise<string> {
    const dir = join(tmp, `slow-${n++}`);
    await writeTinyQwen2(dir, makeTinyQwen2({ hidden: 256, intermediate: 768, layers: 6, heads: 4, kvHeads: 2, vocab: 4096, tie: true, seed: 5 }), { dtype: 'F32' });
    return dir;
  }

  it('Ctrl-C under `npm run quantize` (SIGINT to the whole process tree) leaves neither <out> nor <out>.partial-*', async () => {
    // Before: tsx's signal relay SIGKILLed the busy child ~60 ms after SIGINT, so the partial
    // folder stayed (8 of 8 runs). The npm script now runs node directly with tsx as a loader.
    const model = await slowModel();
    const out = join(tmp, `sigint-${n++}`);
    let pid = 0;
    let sent = false;
    const r = await runProcess('npm', ['run', 'quantize', '--', '--model', model, '--out', out], {
      detached: true, // its own process group, as a terminal's foreground job
      onStart: (p) => (pid = p),
      onStderr: (all) => {
        if (!sent && /\[3\/\d+\]/.test(all)) {
          sent = true;
          process.kill(-pid, 'SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.stderr).toContain('interrupted: cancelling…');
    expect(r.stderr).toContain('cancelled; no bundle was written');
    expect(leftovers(out)).toEqual([]);
  });

  it('SIGTERM: exit 143, nothing left', async () => {
    const model = await slowModel();
    const out = join(tmp, `sigterm-${n++}`);
    let pid = 0;
    let sent = false;
    const r = await runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/quantize.ts'), '--model', model, '--out', out], {
      onStart: (p) => (pid = p),
      onStderr: (all) => {
        if (!sent && /\[3\/\d+\]/.test(all)) {
          sent = true;
          process.kill(pid, 'SIGTERM');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.stderr).toContain('terminated: cancelling…');
    expect(r.code).toBe(143);
    expect(leftovers(out)).toEqual([]);
  });
});

describe('quantize CLI: model folders and the Hub', () => {
  it('a Hugging Face cache snapshot (symlinks into ../../blobs) gives the plain folder\'s bytes; links leaving the cache are refused', async () => {
    const plain = await tinyModel({ seed: 11 });
    const cache = join(tmp, `hub-cache-${n++}`);
    const repoDir = join(cache, 'models--org--tiny');
    const sha = 'c'.repeat(40);
    const snapshot = join(repoDir, 'snapshots', sha);
    mkdirSync(join(repoDir, 'blobs'), { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(join(repoDir, 'refs'));
    writeFileSync(join(repoDir, 'refs', 'main'), sha);
    for (const name of readdirSync(plain)) {
      const bytes = readFileSync(join(plain, name));
      const blob = createHash('sha256').update(bytes).digest('hex');
      writeFileSync(join(repoDir, 'blobs', blob), bytes);
      symlinkSync(`../../blobs/${blob}`, join(snapshot, name));
    }
    const fromCache = join(tmp, `from-cache-${n++}`);
    const r = await runCli(['--model', snapshot, '--out', fromCache, '--quiet']);
    expect(r.stderr).not.toMatch(/^(error|warning)/m);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`is a Hugging Face cache snapshot of org/tiny at ${sha}`);
    const fromPlain = join(tmp, `from-plain-${n++}`);
    expect((await runCli(['--model', plain, '--out', fromPlain, '--quiet'])).code).toBe(0);
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'generation_config.json']) {
      expect(readFileSync(join(fromCache, f)).equals(readFileSync(join(fromPlain, f)))).toBe(true);
    }
    // The card and quantization config name the cached repo and commit instead of the folder name.
    const qc = JSON.parse(readFileSync(join(fromCache, 'quantization_config.json'), 'utf8'));
    expect([qc.source_repo, qc.source_revision]).toEqual(['org/tiny', sha]);

    // A tokenizer link leaving the cache: skipped with a warning. A weights link leaving it: refused.
    const outside = join(tmp, `outside-${n++}.json`);
    writeFileSync(outside, '{}');
    rmSync(join(snapshot, 'tokenizer.json'));
    symlinkSync(outside, join(snapshot, 'tokenizer.json'));
    const warned = await runCli(['--model', snapshot, '--out', join(tmp, `w-${n++}`), '--quiet']);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toMatch(new RegExp(`^warning: tokenizer\\.json is a symbolic link to ${outside}, outside the Hugging Face cache folder ${repoDir}; not used$`, 'm'));
    rmSync(join(snapshot, 'config.json'));
    symlinkSync(outside, join(snapshot, 'config.json'));
    const refused = await runCli(['--model', snapshot, '--out', join(tmp, `w-${n++}`), '--quiet']);
    expectOneLineError(refused.stderr, /config\.json is a symbolic link to .*, outside the Hugging Face cache folder .*; links are followed only within that folder/);
    expect(refused.code).toBe(2);
  });

  it('a token inside --hub-url is used, and appears nowhere in the output or the bundle', async () => {
    const model = await tinyModel({ seed: 12 });
    const token = 'hf_secretInUrl0123456789';
    const hub = await startMockHub({ repos: { 'org/gated': { dir: model, gated: { tokens: [token] } } } });
    try {
      const out = join(tmp, `tok-${n++}`);
      const url = hub.url.replace('http://', `http://me:${token}@`);
      const r = await runCli(['--model', 'org/gated', '--hub-url', url, '--out', out, '--quiet']);
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
      expect(r.stderr + r.stdout).not.toContain(token);
      expect(r.stderr).toContain('took the Hub token from the credentials in --hub-url');
      for (const f of readdirSync(out)) expect(readFileSync(join(out, f)).includes(token)).toBe(false);
      expect(readFileSync(join(out, 'README.md'), 'utf8')).not.toContain('me:');
      // Without the credentials the gated repo refuses: the token really came from the URL.
      const denied = await runCli(['--model', 'org/gated', '--hub-url', hub.url, '--out', join(tmp, `tok-${n++}`), '--quiet']);
      expect(denied.code).toBe(2);
    } finally {
      await hub.close();
    }
  });

  it('a hub that ignores Range, and one that drops every 64 KiB: the CLI finishes with the local run\'s bytes', async () => {
    const model = await tinyModel({ seed: 13, hidden: 128, intermediate: 192, vocab: 256 });
    const local = join(tmp, `local-${n++}`);
    expect((await runCli(['--model', model, '--out', local, '--quiet'])).code).toBe(0);
    const expected = readFileSync(join(local, 'model.safetensors'));
    for (const opts of [{ ignoreRange: true }, { faults: [{ kind: 'dropEvery' as const, path: 'model.safetensors', everyBytes: 64 * 1024 }] }]) {
      const hub = await startMockHub({ repos: { 'org/tiny': { dir: model } }, ...opts });
      try {
        const out = join(tmp, `hub-${n++}`);
        const r = await runCli(['--model', 'org/tiny', '--hub-url', hub.url, '--out', out, '--quiet']);
        expect(r.stderr).not.toMatch(/^error/m);
        expect(r.code).toBe(0);
        expect(readFileSync(join(out, 'model.safetensors')).equals(expected)).toBe(true);
        if ('ignoreRange' in opts) expect(r.stderr).toMatch(/^notice: 127\.0\.0\.1:\d+ ignores HTTP Range requests/m);
        else expect(hub.log.filter((e) => e.cut).length).toBeGreaterThan(readFileSync(join(model, 'model.safetensors')).length / (64 * 1024) - 2);
      } finally {
        await hub.close();
      }
    }
  });

  it('Hub network errors exit 2 with one line naming the host; a mistyped local path says it was taken as a repo id', async () => {
    const hub = await startMockHub({ repos: {} });
    const deadUrl = hub.url;
    await hub.close(); // nothing listens there any more
    const r = await runCli(['--model', 'org/tiny', '--hub-url', deadUrl, '--out', join(tmp, `net-${n++}`), '--quiet']);
    expectOneLineError(r.stderr, new RegExp(`^error: Could not reach ${deadUrl.replace(/\./g, '\\.')} for org/tiny: `));
    expect(r.code).toBe(2);

    const live = await startMockHub({ repos: {} });
    try {
      const typo = await runCli(['--model', 'modles/tiny', '--hub-url', live.url, '--out', join(tmp, `typo-${n++}`), '--quiet']);
      expect(typo.stderr).toContain(`notice: no local folder named modles/tiny; reading the Hub repo modles/tiny from ${live.url}`);
      expectOneLineError(typo.stderr, /Repository "modles\/tiny" was not found on .* There is no local folder .*modles\/tiny either\.$/);
      expect(typo.code).toBe(2);
    } finally {
      await live.close();
    }
  });
});
