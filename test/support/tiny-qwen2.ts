// Deterministic tiny random Qwen2 checkpoints for tests. The generator's home is src/demo (the
// app's demo model is made by it too); this module keeps the tests' import path and API.
export {
  encodeBF16,
  gaussian,
  makeTinyQwen2,
  tinyQwen2Files,
  mulberry32,
  tinyWeights,
  type TinyQwen2,
  type TinyQwen2Options,
  type TinyTensor,
  type WriteTinyOptions,
} from '../../src/demo/tiny-qwen2';
export { writeTinyQwen2 } from '../../src/demo/tiny-qwen2-node';
export { loadSafetensorsWeights } from './load-weights';
