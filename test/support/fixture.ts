// Locates the shared tinystories-260k fixture (never copied into the repo).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** `<repo>/../shared/fixtures/tinystories-260k`, resolved from this file (repo/test/helpers). */
export const FIXTURE_DIR = path.resolve(here, '../../../shared/fixtures/tinystories-260k');

/** True when the fixture folder and its model are present; tests skip otherwise. */
export const HAS_FIXTURE = existsSync(path.join(FIXTURE_DIR, 'model.safetensors'));

export const FIXTURE_SKIP_REASON = `fixture folder ${FIXTURE_DIR} not present`;

export function fixtureText(name: string): string {
  return readFileSync(path.join(FIXTURE_DIR, name), 'utf8');
}

export function fixtureJson<T = unknown>(name: string): T {
  return JSON.parse(fixtureText(name)) as T;
}

/** Suite title; says why when the suite is skipped (vitest's skipIf takes no reason). */
export function fixtureSuite(title: string): string {
  return HAS_FIXTURE ? title : `${title} — skipped: ${FIXTURE_SKIP_REASON}`;
}
