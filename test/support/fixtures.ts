/**
 * Vitest fixtures (`test.extend`): tests ask for what they need by name and get a fresh copy,
 * set up lazily and torn down after the test.
 *
 *   import { test } from '../support/fixtures';
 *   test('…', async ({ tinyCheckpoint, tmpDir }) => { … });
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base } from 'vitest';
import { readFolder } from './bundle';
import { FIXTURE_DIR, HAS_FIXTURE } from './fixture';
import type { MemoryModelSource } from './memory';
import { memorySink, type MemorySink } from './memory';
import { tinyCheckpoint } from './tiny-checkpoint';

export interface TestFixtures {
  /** The 112-wide random Qwen2 with outlier channels (BF16, tied), as an in-memory model source. */
  tinyCheckpoint: MemoryModelSource;
  /** The real tinystories-260k fixture's files in memory; the test is skipped when ../shared is absent. */
  fixtureFiles: Record<string, Uint8Array>;
  /** An empty temporary folder, removed after the test. */
  tmpDir: string;
  /** A fresh in-memory bundle sink. */
  sink: MemorySink;
}

export const test = base.extend<TestFixtures>({
  tinyCheckpoint: async ({}, use) => {
    await use(await tinyCheckpoint());
  },
  fixtureFiles: async ({ skip }, use) => {
    if (!HAS_FIXTURE) skip(`fixture folder ${FIXTURE_DIR} not present`);
    await use(readFolder(FIXTURE_DIR));
  },
  tmpDir: async ({}, use) => {
    const dir = mkdtempSync(join(tmpdir(), 'quarot-test-'));
    try {
      await use(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  sink: async ({}, use) => {
    await use(memorySink());
  },
});

export { expect, describe } from 'vitest';
