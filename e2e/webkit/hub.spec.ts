/**
 * WebKit: a shareable Hub link with autorun against the local mock hub (another origin, CORS,
 * range reads from the worker) completes with the link's settings; the zip equals the CLI's
 * bundle made from the same folder.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyQwen2 } from '../../src/demo/tiny-qwen2';
import { writeTinyQwen2 } from '../../src/demo/tiny-qwen2-node';
import { compareWithCli } from '../bundle-compare';
import { startMockHub, type MockHub } from '../../test/support/mock-hub';
import { clearDownloads, fieldValue, innerText, openApp, pageErrors, ROOT, screenshot, startSession, waitForDownload, waitForStatus } from './browser';
import type { Session } from './webdriver';

const REPO = 'e2e-org/tiny-qwen2';
let s: Session;
let hub: MockHub;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-hub-'));
const modelDir = path.join(tmp, 'tiny-qwen2');

beforeAll(async () => {
  const model = makeTinyQwen2({ hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, vocab: 96, tie: true, seed: 7, outliers: true });
  await writeTinyQwen2(modelDir, model, { dtype: 'BF16', shards: 2 });
  hub = await startMockHub({ repos: { [REPO]: { dir: modelDir } } });
  s = await startSession();
});
afterAll(async () => {
  await s?.close();
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('WebKit: shareable link against a hub', () => {
  it('autoruns ?model=<repo>&hub=<mock>&autorun=1 with the link\'s settings; the zip equals the CLI bundle', async () => {
    const query = new URLSearchParams({ model: REPO, hub: hub.url, bits: '8', scheme: 'per_tensor', clip: 'absmax', rotation: 'block', block: '16', seed: '3', autorun: '1' });
    await openApp(s, `?${query}`);
    await waitForStatus(s, 'done');
    expect(await fieldValue(s, 'Bits')).toBe('8');
    expect(await fieldValue(s, 'Rotation')).toBe('block');
    expect(await fieldValue(s, 'Block size')).toBe('16');
    expect(await fieldValue(s, 'Seed')).toBe('3');
    expect(await innerText(s, '[data-testid="readme"]')).toContain('W8 per_tensor/absmax');
    // The worker's range reads reached the mock hub.
    expect(hub.log.some((e) => e.path.endsWith('.safetensors') && e.status === 206)).toBe(true);
    await screenshot(s, '04-hub-autorun');
    clearDownloads();
    await s.clickButton('Download bundle');
    const zip = await waitForDownload('tiny-qwen2-quarot-w8-per_tensor-absmax-block16.zip');
    // The CLI reads the same repo from the same hub (asynchronously: the hub answers from this process).
    const cliOut = path.join(tmp, 'cli');
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/quantize.ts', '--model', REPO, '--hub-url', hub.url, '--out', cliOut, '--quiet',
      '--bits', '8', '--scheme', 'per_tensor', '--clip', 'absmax', '--rotation', 'block', '--block-size', '16', '--seed', '3'], { cwd: ROOT });
    expect(compareWithCli(zip, cliOut)).toContain('model.safetensors');
    expect(await pageErrors(s)).toEqual([]);
  });
});
