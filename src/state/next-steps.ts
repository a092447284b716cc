/**
 * After a run: what to do with the bundle — verify it, load and test it with ANEMLL's SP loader,
 * convert it for the Neural Engine, and check it in Hugging Face transformers — as exact commands
 * with the bundle's folder name filled in (FORMAT.md: the stored weights are dequantized, so the
 * same folder loads in both).
 */
export interface NextStep {
  title: string;
  note?: string;
  commands: string;
}

function q(s: string): string {
  return /^[\w.@/+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `folder`: the bundle's folder name; `zipped`: it was downloaded as `<folder>.zip`; `prompt` for the test generation. */
export function nextSteps(folder: string, zipped: boolean, prompt = 'Once upon a time'): NextStep[] {
  const f = q(folder);
  const steps: NextStep[] = [];
  steps.push({
    title: zipped ? 'Unpack and verify the download' : 'Verify the bundle',
    commands: [
      ...(zipped ? [`unzip ${q(`${folder}.zip`)} -d ${f}`] : []),
      `(cd ${f} && sha256sum -c manifest.sha256)`,
    ].join('\n'),
  });
  steps.push({
    title: 'Load and test it with ANEMLL’s SP loader (PyTorch)',
    note: 'In a checkout of ANEMLL’s SP_QUANT branch next to the bundle folder, with ANEMLL’s Python environment (env-anemll) set up as its README describes.',
    commands: [
      'git clone --branch SP_QUANT https://github.com/Anemll/Anemll.git',
      'cd Anemll && source env-anemll/bin/activate',
      `ENABLE_SP_QUANT=1 python tests/dev/test_qwen25_sp_quant.py --model ../${f} --name ${q(folder)} --skip-default`,
    ].join('\n'),
  });
  steps.push({
    title: 'Convert it for the Apple Neural Engine (Core ML) and chat with it',
    commands: [
      `ENABLE_SP_QUANT=1 ./anemll/utils/convert_model.sh --model ../${f} --output ../${q(`${folder}-coreml`)} --context 512`,
      `python tests/chat.py --meta ../${q(`${folder}-coreml`)}/meta.yaml --prompt ${q(prompt)} --max-tokens 20 --no-template`,
    ].join('\n'),
  });
  steps.push({
    title: 'Check it in Hugging Face transformers',
    note: 'The weights are stored dequantized, so Qwen2ForCausalLM runs the bundle as is; it reports the input_scales/output_scales/codebook keys as unused — expected.',
    commands: [
      'pip install torch transformers safetensors',
      `python - <<'PY'`,
      'from transformers import AutoModelForCausalLM, AutoTokenizer',
      `path = ${JSON.stringify(folder)}`,
      'tok = AutoTokenizer.from_pretrained(path)',
      'model = AutoModelForCausalLM.from_pretrained(path, torch_dtype="float32")',
      `ids = tok(${JSON.stringify(prompt)}, return_tensors="pt")`,
      'print(tok.decode(model.generate(**ids, max_new_tokens=20, do_sample=False)[0]))',
      'PY',
    ].join('\n'),
  });
  return steps;
}
