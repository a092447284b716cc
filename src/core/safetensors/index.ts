export type { Dtype, TensorInfo, SafetensorsHeader, ByteSource, ModelSource, FileWriter, BundleSink } from './types';
export { DTYPE_BYTES } from './types';
export { decodeToF32, f32ToF16Bits, f16BitsToF32, roundToF16, encodeF16, encodeF32 } from './dtype';
export { parseSafetensorsHeader, readSafetensorsHeader, headerLengthFromPrefix, MAX_HEADER_BYTES } from './header';
export { readTensorBytes, readTensorF32, readTensorRowsF32 } from './read-tensor';
export { openSafetensorsModel, SINGLE_FILE, INDEX_FILE, type SafetensorsModel } from './model';
export {
  planSafetensorsShards,
  SafetensorsStreamWriter,
  tensorSpecBytes,
  type TensorSpec,
  type ShardFile,
  type ShardLayout,
} from './writer';
