export { createWebGpuBackend, WebGpuBackend, type WebGpuBackendOptions, type KernelTiming } from './webgpu-backend';
export { GpuUnavailableError, isGpuUnavailable } from '../../gpu/errors';
export { createFallbackBackend, type FallbackBackend, type FallbackNotice } from './fallback';
export { createBackend, gpuRuntimeOf, type BackendKind, type CreateBackendOptions } from './select';
export { WebGpuGptqEngine } from './gptq-engine';
export { setShaderSourceLoader, shaderSource, hasBundledShaders, type ShaderName, type ShaderSourceLoader } from '../../gpu/shaders';
