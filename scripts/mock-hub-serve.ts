/**
 * Serve model folders through the mock hub in its own process (the bench uses it so the
 * server's copy of the files does not count toward the pipeline's memory):
 *   tsx scripts/mock-hub-serve.ts org/name=/path/to/model [more…]
 * Prints `MOCK_HUB_URL=<url>` once listening; stops on SIGTERM/SIGINT or when stdin closes.
 */
import { startMockHub, type MockRepo } from '../test/support/mock-hub';

const repos: Record<string, MockRepo> = {};
for (const arg of process.argv.slice(2)) {
  const eq = arg.indexOf('=');
  if (eq < 0) throw new Error(`expected repo=dir, got ${arg}`);
  repos[arg.slice(0, eq)] = { dir: arg.slice(eq + 1) };
}
const hub = await startMockHub({ repos });
process.stdout.write(`MOCK_HUB_URL=${hub.url}\n`);
const stop = (): void => { void hub.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
