/** The demo models listed in `public/demo/index.json` (written by scripts/make-demo.ts). */

export interface DemoFile {
  path: string;
  size: number;
}

export interface DemoModel {
  /** Folder name under demo/, also the bundle's `target.model` (what the CLI calls a folder). */
  name: string;
  title: string;
  description: string;
  files: DemoFile[];
  /** Sum of the file sizes. */
  bytes: number;
  /** A calibration text file in the folder, for the quality check. */
  calibration?: string;
  /** The same text pre-tokenized as the model was trained on it (JSON with an "ids" array). */
  calibrationTokens?: string;
  /**
   * Built-in calibration for calibration-based quantization (GPTQ), never overlapping the
   * evaluation text: a UTF-8 text, a token stream (JSON with an "ids" array, sampled like text)
   * and/or a seed-format calib.json (samples used as they are). File names in the folder.
   */
  quantCalibration?: { text?: string; tokens?: string; calibJson?: string };
}

export interface DemoIndex {
  version: 1;
  models: DemoModel[];
}

export const DEMO_INDEX_FILE = 'index.json';

/** Checks the shape of a fetched index.json (it is generated, but a stale one should fail clearly). */
export function parseDemoIndex(text: string): DemoIndex {
  const v = JSON.parse(text) as Partial<DemoIndex>;
  if (v?.version !== 1 || !Array.isArray(v.models)) throw new Error('demo/index.json: unexpected format; run `npm run demo` again');
  for (const m of v.models) {
    if (typeof m?.name !== 'string' || !Array.isArray(m.files)) throw new Error('demo/index.json: a model entry lacks name/files; run `npm run demo` again');
  }
  return v as DemoIndex;
}
