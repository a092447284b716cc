/**
 * The app's calibration choice for GPTQ (Method = GPTQ): where the calibration text comes from,
 * samples × tokens and the sampling seed — its state, its link form (src/core/link.ts
 * CalibrationSpec) and the request the worker gets. Files themselves live in session.
 */
import { CALIBRATION_DEMO, CALIBRATION_WIKITEXT2, DEFAULT_CALIBRATION, calibrationFileName, parseCalibrationSpec, type CalibrationSpec, type LinkCalibration } from '../core/link';
import type { DemoModel } from '../demo/catalog';
import type { CalibrationRequest } from '../worker/protocol';

export type CalibKind = 'demo' | 'dataset' | 'file';

export interface CalibState {
  kind: CalibKind;
  /** The person (or a link) picked the source; until then it follows the model (the demo's own, else WikiText-2). */
  chosen: boolean;
  /** Hub dataset spec for kind 'dataset' (`wikitext-2-raw-v1` = WikiText-2 raw train). */
  dataset: string;
  samples: number;
  seqlen: number;
  seed: number;
  /** The dropped/picked file (the File is in session). */
  file: { name: string; bytes: number } | null;
  /** A link named `file:<name>`: that file has to be dropped again (files cannot travel in links). */
  wantedFile: string | null;
}

export const initialCalib: CalibState = {
  kind: 'demo',
  chosen: false,
  dataset: CALIBRATION_WIKITEXT2,
  ...DEFAULT_CALIBRATION,
  file: null,
  wantedFile: null,
};

/** The demo files that hold built-in calibration, in the order the CLI's `--calib demo` prefers them. */
export function demoCalibrationFiles(model: DemoModel | undefined): string[] {
  const q = model?.quantCalibration;
  return q ? [q.tokens, q.calibJson, q.text].filter((f): f is string => !!f) : [];
}

/** The source in use: the chosen one, or by default the demo's built-in calibration (offline) where there is one, else the dataset. */
export function effectiveCalibKind(c: CalibState, demo: DemoModel | undefined): CalibKind {
  if (c.chosen) return c.kind;
  return demoCalibrationFiles(demo).length > 0 ? 'demo' : 'dataset';
}

/** The link/CLI form of the choice; null for a file source with no file named yet. */
export function calibSpec(c: CalibState, demo: DemoModel | undefined): CalibrationSpec | null {
  const kind = effectiveCalibKind(c, demo);
  const counts = { samples: c.samples, seqlen: c.seqlen, seed: c.seed };
  if (kind === 'demo') return { source: CALIBRATION_DEMO, ...counts };
  if (kind === 'dataset') return { source: c.dataset, ...counts };
  const name = c.file?.name ?? c.wantedFile;
  return name ? { source: `file:${name}`, ...counts } : null;
}

/** A link's calibration as state (throws InputError on bad values). */
export function calibFromLink(raw: LinkCalibration): Partial<CalibState> {
  if (raw.source === undefined && raw.samples === undefined && raw.seqlen === undefined && raw.seed === undefined) return {};
  const spec = parseCalibrationSpec({ ...raw, source: raw.source ?? CALIBRATION_DEMO });
  const counts = { samples: spec.samples, seqlen: spec.seqlen, seed: spec.seed };
  if (raw.source === undefined) return counts;
  const file = calibrationFileName(spec.source);
  if (file !== undefined) return { ...counts, kind: 'file', chosen: true, wantedFile: file };
  if (spec.source === CALIBRATION_DEMO) return { ...counts, kind: 'demo', chosen: true };
  return { ...counts, kind: 'dataset', chosen: true, dataset: spec.source };
}

/** What the worker needs to build the calibration set; a string says why it cannot be built. */
export function calibRequest(
  c: CalibState, demo: DemoModel | undefined, file: File | null, hub: { hubUrl?: string; token?: string },
): CalibrationRequest | string {
  const spec = calibSpec(c, demo);
  const kind = effectiveCalibKind(c, demo);
  if (kind === 'file') {
    if (!file || !spec) {
      return c.wantedFile
        ? `This link's calibration is the file “${c.wantedFile}”, which cannot travel in a link: drop or pick that file under Method → Calibration, or choose another calibration source.`
        : 'The calibration (for GPTQ or the W8 budget) needs data: drop or pick a text file or calib.json under Method → Calibration, or choose another source.';
    }
    return { spec, file, fileName: file.name };
  }
  if (kind === 'demo') {
    if (!demo) return 'The calibration “demo’s built-in” needs a demo model: pick one, or choose WikiText-2 or a file as the calibration source.';
    const demoFiles = demoCalibrationFiles(demo);
    if (demoFiles.length === 0) return `The demo model ${demo.name} has no built-in calibration: choose WikiText-2 or a file as the calibration source.`;
    return { spec: spec!, demoFiles };
  }
  return { spec: spec!, hubUrl: hub.hubUrl, token: hub.token };
}
