/**
 * The bundle's config.json: the input's, with `tie_word_embeddings: false` when lm_head.weight
 * is written, `torch_dtype` of the stored weights, and no `quantization_config` key (ANEMLL's
 * dependency check rejects a config that has one).
 */
export function bundleConfigJson(raw: Record<string, unknown>, writesLmHead: boolean, dtype: 'F16' | 'F32'): string {
  const out: Record<string, unknown> = { ...raw };
  delete out.quantization_config;
  if (writesLmHead) out.tie_word_embeddings = false;
  out.torch_dtype = dtype === 'F16' ? 'float16' : 'float32';
  return JSON.stringify(out, null, 2) + '\n';
}
