// The CPU backend (the oracle) for src/core's beside-tests, which may import only vitest and test/support.
export { CpuBackend } from '../../src/backends/cpu/cpu-backend';
