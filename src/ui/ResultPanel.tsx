import type { QuantSettings } from '../core/settings';
import { downloadBundle, saveBundleTo } from '../state/actions';
import { useApp } from '../state/store';
import { errorTotals, formatBytes, formatDuration, pct } from '../state/derive';
import { nextSteps } from '../state/next-steps';
import { resultPrecisionMap } from '../state/precision';
import { PrecisionMap } from './PrecisionMap';

function settingsText(s: QuantSettings): string {
  if (s.bits === 16) return `16-bit, rotation ${s.rotation}`;
  const extras = [s.codebook === 'learned' ? 'learned codebook' : '', s.bits === 4 && s.w8Budget > 0 ? `W8 budget ${Number((s.w8Budget * 100).toPrecision(4))} %` : '', s.bitsOverride ? `overrides ${s.bitsOverride}` : ''].filter(Boolean);
  return `W${s.bits} ${s.scheme}/${s.clip}${s.method === 'gptq' ? ' GPTQ' : ''}, rotation ${s.rotation}${s.rotation === 'block' ? ` ${s.blockSize}` : ''}${extras.length ? `, ${extras.join(', ')}` : ''}`;
}

export function ResultPanel() {
  const status = useApp((s) => s.status);
  const r = useApp((s) => s.result);
  const reports = useApp((s) => s.reports);
  const caps = useApp((s) => s.caps);
  const save = useApp((s) => s.saveState);
  const settings = useApp((s) => s.settings);
  const comparison = useApp((s) => s.quality.report?.comparison);
  const planned = useApp((s) => s.preflight.info?.tensors);
  if (status !== 'done' || !r) return null;
  const t = errorTotals(reports);
  const stale = JSON.stringify(settings) !== JSON.stringify(r.settings);
  return (
    <section className="panel" aria-labelledby="result-h" data-testid="result" data-stale={stale ? 'true' : 'false'}>
      <h2 id="result-h">Result: {r.bundleName}</h2>
      {stale && (
        <p className="stale" role="status" data-testid="stale">
          This bundle was made from <b>{r.modelLabel}</b> with <b>{settingsText(r.settings)}</b>; the settings now shown ({settingsText(settings)}) would
          make a different one — press Run for it.
        </p>
      )}
      <p style={{ marginTop: 0 }}>
        {r.files.length} files, {formatBytes(r.bytesWritten)} in {formatDuration(r.elapsedMs / 1000)} on {r.backend}.
        {r.savedTo && <> Written to <b>{r.savedTo}</b>.</>}
      </p>
      {comparison && comparison.bundles.length > 1 ? (
        <p className="verdict" data-testid="result-verdict">Measured (perplexity and KL on {comparison.textLabel}): {comparison.verdict}</p>
      ) : (
        t.tensors > 0 && <p className="muted" data-testid="result-verdict">Which setting is better is measured under “Check quality” (perplexity and KL on the same text, against plain RTN of the same model).</p>
      )}
      {t.tensors > 0 && (
        <p className="muted" role="note" data-testid="weight-error">
          Weight error, as supporting detail: mean relative error {pct(t.meanError, 3)} vs plain RTN {pct(t.meanBaseline, 3)}; {t.betterThanBaseline}/{t.tensors} tensors lower than plain RTN.
        </p>
      )}
      <div className="runbar">
        <button className="primary" onClick={() => void downloadBundle()} disabled={save.state === 'saving'}>Download bundle</button>
        {r.zipReady && caps?.fileSystemAccess && <button className="secondary" onClick={() => void saveBundleTo('folder')}>Save into a folder…</button>}
        {r.zipReady && caps?.opfs && <button className="secondary" onClick={() => void saveBundleTo('opfs')}>Save to browser storage</button>}
        {save.message && <span className={save.state === 'error' ? 'error' : 'muted'}>{save.message}</span>}
      </div>
      {r.settings.bits !== 16 && <PrecisionMap view={resultPrecisionMap(reports, r.settings, stale ? undefined : planned)} title="Precision map (as written)" />}
      <ul className="files">
        {r.files.map((f) => <li key={f.path}><code>{f.path}</code> <span className="muted">{formatBytes(f.size)}</span></li>)}
      </ul>
      <h3>Summary (as the CLI prints it)</h3>
      <pre className="summary" data-testid="summary">{r.summary}</pre>
      <h3>Same bundle again</h3>
      <div className="result-links">
        <pre className="summary wrap" data-testid="cli-command">{r.cliCommand}</pre>
        <input readOnly value={r.link} aria-label="Link that reproduces this bundle" onFocus={(e) => e.target.select()} />
      </div>
      <h3>Model card (README.md)</h3>
      <pre className="readme wrap" data-testid="readme">{r.readme}</pre>
    </section>
  );
}

/** After a run: load/test with ANEMLL, convert, and check in transformers — the bundle's folder name filled in. */
export function NextStepsPanel() {
  const status = useApp((s) => s.status);
  const r = useApp((s) => s.result);
  const prompt = useApp((s) => s.quality.prompt);
  if (status !== 'done' || !r) return null;
  const zipped = !r.savedTo;
  const steps = nextSteps(r.bundleName, zipped, prompt.trim() || 'Once upon a time');
  return (
    <section className="panel" aria-labelledby="next-h" data-testid="next-steps">
      <h2 id="next-h">Next steps: run {r.bundleName} with ANEMLL</h2>
      {steps.map((s, i) => (
        <div key={s.title}>
          <h3>{i + 1}. {s.title}</h3>
          {s.note && <p className="muted" style={{ margin: '0 0 4px' }}>{s.note}</p>}
          <pre className="cmd" data-testid={`next-step-${i + 1}`}>{s.commands}</pre>
        </div>
      ))}
    </section>
  );
}
