// The error type lives with the GPU runtime (src/gpu); re-exported for the backend's callers.
export { GpuUnavailableError, isGpuUnavailable } from '../../gpu/errors';
