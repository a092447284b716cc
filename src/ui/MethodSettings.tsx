import { useMemo } from 'react';
import { CALIBRATION_WIKITEXT2, usesCalibration } from '../core/link';
import { describeGptqCost, gptqCost, measureHostFlops } from '../core/gptq-cost';
import type { Method } from '../core/settings';
import { demoCalibrationFiles, effectiveCalibKind, type CalibKind } from '../state/calibration';
import { setCalib, setCalibFile, setCalibKind, setSetting } from '../state/actions';
import { formatBytes, formatDuration } from '../state/derive';
import { useApp } from '../state/store';

let hostFlops: number | null = null;
/** This page's single-thread FLOP/s on GPTQ's main CPU kernel, measured once (a few ms). */
function pageFlops(): number {
  hostFlops ??= measureHostFlops();
  return hostFlops;
}

const int = (v: string, min: number, max: number): number | null => {
  const n = Number(v);
  return Number.isInteger(n) && n >= min && n <= max ? n : null;
};

/** Method (RTN / GPTQ) and GPTQ's calibration: source, samples × seqlen; act-order, damp and the sampling seed under "Advanced". */
export function MethodSettings() {
  const s = useApp((st) => st.settings);
  const c = useApp((st) => st.calib);
  const demo = useApp((st) => (st.modelKind === 'demo' ? st.demos.find((d) => d.name === st.demoName) : undefined));
  const config = useApp((st) => st.preflight.info?.config);
  const gptq = s.method === 'gptq';
  // Calibration controls: GPTQ, or RTN with a 4-bit W8 budget (its sensitivity ranking).
  const calibrated = usesCalibration(s);
  const kind = effectiveCalibKind(c, demo);
  const hasDemo = demoCalibrationFiles(demo).length > 0;
  const cost = useMemo(() => (gptq && config ? gptqCost(config, c.samples, c.seqlen) : null), [gptq, config, c.samples, c.seqlen]);
  return (
    <div data-testid="method-settings">
      <h3>Method</h3>
      <div className="settings">
        <label className="field">
          <span>Method</span>
          <select value={s.method} onChange={(e) => setSetting('method', e.target.value as Method)} disabled={s.bits === 16}>
            <option value="rtn">RTN (round to nearest)</option>
            <option value="gptq">GPTQ (with calibration data)</option>
          </select>
        </label>
        {calibrated && (
          <>
            <label className="field wide">
              <span>Calibration{!gptq && <small className="muted"> (ranks projections for the W8 budget)</small>}</span>
              <select value={kind} onChange={(e) => setCalibKind(e.target.value as CalibKind)} aria-label="Calibration source">
                <option value="demo" disabled={!hasDemo}>demo’s built-in calibration (offline){hasDemo ? '' : ' — not for this model'}</option>
                <option value="dataset">{c.dataset === CALIBRATION_WIKITEXT2 ? 'WikiText-2 raw train (Hugging Face Hub)' : `Hub dataset ${c.dataset}`}</option>
                <option value="file">a text file or calib.json…</option>
              </select>
            </label>
            {kind === 'file' && (
              <label className="field wide">
                <span>Calibration file {c.file ? <small className="muted">({c.file.name}, {formatBytes(c.file.bytes)})</small> : c.wantedFile ? <small className="error">(the link names “{c.wantedFile}”: pick it again)</small> : null}</span>
                <input type="file" accept=".txt,.text,.md,.json,text/plain,application/json" aria-label="Calibration file" data-testid="calib-file"
                  onChange={(e) => setCalibFile(e.target.files?.[0] ?? null)} />
              </label>
            )}
            <label className="field">
              <span>Samples</span>
              <input type="number" min={1} max={65536} step={1} value={c.samples} aria-label="Calibration samples"
                onChange={(e) => { const v = int(e.target.value, 1, 65536); if (v !== null) setCalib({ samples: v }); }} />
            </label>
            <label className="field">
              <span>Tokens per sample</span>
              <input type="number" min={1} max={32768} step={1} value={c.seqlen} aria-label="Calibration sample length"
                onChange={(e) => { const v = int(e.target.value, 1, 32768); if (v !== null) setCalib({ seqlen: v }); }} />
            </label>
          </>
        )}
      </div>
      {gptq && (
        <>
          <details className="advanced">
            <summary>Advanced GPTQ settings</summary>
            <div className="settings">
              <label className="check">
                <input type="checkbox" checked={s.actOrder} onChange={(e) => setSetting('actOrder', e.target.checked)} />
                Act-order (columns by descending Hessian diagonal)
              </label>
              <label className="field">
                <span>Damp</span>
                <input type="number" min={0} max={1} step={0.005} value={s.damp} aria-label="GPTQ damp"
                  onChange={(e) => { const v = Number(e.target.value); if (e.target.value !== '' && Number.isFinite(v) && v >= 0 && v <= 1) setSetting('damp', v); }} />
              </label>
              <label className="field">
                <span>Sampling seed</span>
                <input type="number" min={0} max={4294967295} step={1} value={c.seed} aria-label="Calibration seed"
                  onChange={(e) => { const v = int(e.target.value, 0, 0xffffffff); if (v !== null) setCalib({ seed: v }); }} />
              </label>
            </div>
          </details>
          <p className="muted" data-testid="gptq-cost" style={{ margin: '4px 0 0' }}>
            {kind === 'file' && c.file?.name.toLowerCase().endsWith('.json') ? 'A calib.json is used as it is (its own samples). ' : ''}
            {cost
              ? <>GPTQ {describeGptqCost(cost)}. The calibration forward and GPTQ run on the CPU in this version: at this page's best {(pageFlops() / 1e9).toFixed(1)} GFLOP/s (measured here, one core) at least {formatDuration(cost.total / pageFlops())}.</>
              : 'GPTQ runs the calibration samples through each layer, then quantizes its projections column by column; the cost shows once the model is read.'}
          </p>
        </>
      )}
    </div>
  );
}
