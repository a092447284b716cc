import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { TOOL_VERSION } from '../src/core/version';

test('the version written into bundles is package.json\'s', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  expect(TOOL_VERSION).toBe(pkg.version);
});
