import { describe, expect, it } from 'vitest';
import { nextSteps } from './next-steps';

describe('nextSteps', () => {
  it('fills the bundle folder into every command', () => {
    const s = nextSteps('Qwen2.5-0.5B-quarot-w4-sp-mse', true);
    expect(s.map((x) => x.title)).toEqual([
      'Unpack and verify the download',
      'Load and test it with ANEMLL’s SP loader (PyTorch)',
      'Convert it for the Apple Neural Engine (Core ML) and chat with it',
      'Check it in Hugging Face transformers',
    ]);
    expect(s[0].commands).toBe('unzip Qwen2.5-0.5B-quarot-w4-sp-mse.zip -d Qwen2.5-0.5B-quarot-w4-sp-mse\n(cd Qwen2.5-0.5B-quarot-w4-sp-mse && sha256sum -c manifest.sha256)');
    expect(s[1].commands).toContain('ENABLE_SP_QUANT=1 python tests/dev/test_qwen25_sp_quant.py --model ../Qwen2.5-0.5B-quarot-w4-sp-mse --name Qwen2.5-0.5B-quarot-w4-sp-mse --skip-default');
    expect(s[2].commands).toContain('ENABLE_SP_QUANT=1 ./anemll/utils/convert_model.sh --model ../Qwen2.5-0.5B-quarot-w4-sp-mse --output ../Qwen2.5-0.5B-quarot-w4-sp-mse-coreml --context 512');
    expect(s[3].commands).toContain('path = "Qwen2.5-0.5B-quarot-w4-sp-mse"');
  });

  it('skips unzipping for a folder bundle and quotes names the shell would split', () => {
    const s = nextSteps("my model's bundle", false);
    expect(s[0].title).toBe('Verify the bundle');
    expect(s[0].commands).toBe("(cd 'my model'\\''s bundle' && sha256sum -c manifest.sha256)");
  });
});
