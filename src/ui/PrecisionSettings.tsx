import { linkKeyOf } from '../core/link';
import { DEFAULT_SETTINGS, type CodebookKind } from '../core/settings';
import { acceptShownSettings, setOverrideText, setSetting } from '../state/actions';
import { budgetCost } from '../state/precision';
import { useApp } from '../state/store';

/** Values of the opening link the app could not use: each named, with what is shown instead; Run waits. */
export function LinkProblems() {
  const problems = useApp((s) => s.linkProblems);
  if (!problems.length) return null;
  return (
    <div className="error" role="alert" data-testid="link-problems">
      <b>This link has {problems.length === 1 ? 'a value' : 'values'} that cannot be used.</b>
      <ul style={{ margin: '4px 0' }}>
        {problems.map((p) => (
          <li key={p.key} data-key={linkKeyOf(p.key)}>
            <code>{linkKeyOf(p.key)}={p.value}</code>: {p.message}. Shown instead: <code>{String(DEFAULT_SETTINGS[p.key]) || '(none)'}</code>.
          </li>
        ))}
      </ul>
      <button type="button" className="secondary" onClick={() => acceptShownSettings()}>Use the settings shown</button>
    </div>
  );
}

/** Codebook (integer grid or learned per tensor), W8 budget with its cost, and per-tensor bits overrides. */
export function PrecisionSettings() {
  const s = useApp((st) => st.settings);
  const draft = useApp((st) => st.overrideDraft);
  const draftError = useApp((st) => st.overrideDraftError);
  const pf = useApp((st) => (st.preflight.state === 'ok' ? st.preflight.info : undefined));
  if (s.bits === 16) {
    return (
      <div data-testid="precision-settings">
        <h3>Precision</h3>
        <p className="muted" style={{ margin: 0 }}>At 16 bits nothing is quantized: no codebooks, budget or overrides.</p>
      </div>
    );
  }
  const budgetActs = s.bits === 4;
  const pct = Number((s.w8Budget * 100).toPrecision(4));
  const cost = budgetActs && s.w8Budget > 0 && pf?.budget ? budgetCost(pf.budget, pf.tensors.filter((t) => t.budgetCandidate).length, s) : null;
  const unmatched = !draftError && pf?.overrideError ? pf.overrideError : null;
  return (
    <div data-testid="precision-settings">
      <h3>Precision</h3>
      <div className="settings">
        <label className="field">
          <span>Codebook</span>
          <select value={s.codebook} aria-label="Codebook" onChange={(e) => setSetting('codebook', e.target.value as CodebookKind)}>
            <option value="uniform">integer grid (uniform)</option>
            <option value="learned">learned (per tensor)</option>
          </select>
        </label>
        <label className="field">
          <span>W8 budget (%)</span>
          <input type="number" min={0} max={100} step={1} value={pct} aria-label="W8 budget (%)" disabled={!budgetActs}
            onChange={(e) => { const v = Number(e.target.value); if (e.target.value !== '' && Number.isFinite(v) && v >= 0 && v <= 100) setSetting('w8Budget', v / 100); }} />
        </label>
        <label className="field wide">
          <span>Bits overrides</span>
          <input type="text" value={draft} aria-label="Bits overrides" placeholder="e.g. down_proj=8,layers.0.*=8" spellCheck={false}
            aria-invalid={draftError || unmatched ? 'true' : 'false'} aria-describedby="override-help" onChange={(e) => setOverrideText(e.target.value)} />
        </label>
      </div>
      {(draftError || unmatched) && <p className="error-inline" role="alert" data-testid="override-error" style={{ margin: '4px 0' }}>{draftError ?? unmatched}</p>}
      {budgetActs && s.w8Budget > 0 && (
        <p className="muted" data-testid="budget-cost" style={{ margin: '4px 0 0' }}>
          W8 budget {pct} %: {cost ? cost.text : 'the projections most sensitive on calibration data get 8 bits. Needs calibration data (under Method).'}
        </p>
      )}
      <p className="muted" id="override-help" style={{ margin: '4px 0 0' }}>
        {s.codebook === 'learned' && <>Learned: each projection’s {2 ** s.bits} entries{s.bits === 4 ? ' (256 at 8 bits)' : ''} are fitted to its weights (weighted Lloyd); the embedding keeps the grid. </>}
        {!budgetActs && 'The W8 budget applies to 4-bit runs (at 8 bits every projection already has 8). '}
        Overrides: <code>pattern=bits</code>, comma-separated (bits 4, 8 or 16 = unquantized), matching the full name, <code>layers.N.mlp.down_proj</code> or a tail such as <code>down_proj</code>; the last match wins, and they win over the budget.
      </p>
    </div>
  );
}
