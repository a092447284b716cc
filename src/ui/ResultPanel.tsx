import { downloadBundle, saveBundleTo } from '../state/actions';
import { useApp } from '../state/store';
import { errorTotals, formatBytes, formatDuration, pct } from '../state/derive';

export function ResultPanel() {
  const status = useApp((s) => s.status);
  const r = useApp((s) => s.result);
  const reports = useApp((s) => s.reports);
  const caps = useApp((s) => s.caps);
  const save = useApp((s) => s.saveState);
  if (status !== 'done' || !r) return null;
  const t = errorTotals(reports);
  return (
    <section className="panel" aria-labelledby="result-h" data-testid="result">
      <h2 id="result-h">5 · Result: {r.bundleName}</h2>
      <p style={{ marginTop: 0 }}>
        {r.files.length} files, {formatBytes(r.bytesWritten)} in {formatDuration(r.elapsedMs / 1000)} on {r.backend}.
        {r.savedTo && <> Written to <b>{r.savedTo}</b>.</>}
      </p>
      {t.tensors > 0 && (
        <p className="notice" role="note">
          Mean relative error <b>{pct(t.meanError, 3)}</b> vs plain RTN <b>{pct(t.meanBaseline, 3)}</b>:{' '}
          {t.meanError < t.meanBaseline ? 'rotation helps on this model' : 'plain RTN is as good or better on this model (try rotation "none")'} — {t.betterThanBaseline}/{t.tensors} tensors better than plain RTN.
        </p>
      )}
      <div className="runbar">
        <button className="primary" onClick={() => void downloadBundle()} disabled={save.state === 'saving'}>Download bundle</button>
        {r.zipReady && caps?.fileSystemAccess && <button className="secondary" onClick={() => void saveBundleTo('folder')}>Save into a folder…</button>}
        {r.zipReady && caps?.opfs && <button className="secondary" onClick={() => void saveBundleTo('opfs')}>Save to browser storage</button>}
        {save.message && <span className={save.state === 'error' ? 'error' : 'muted'}>{save.message}</span>}
      </div>
      <ul className="files">
        {r.files.map((f) => <li key={f.path}><code>{f.path}</code> <span className="muted">{formatBytes(f.size)}</span></li>)}
      </ul>
      <h3>Summary (as the CLI prints it)</h3>
      <pre className="summary" data-testid="summary">{r.summary}</pre>
      <h3>Same bundle again</h3>
      <pre className="summary">{`${r.cliCommand}\n\n${r.link}`}</pre>
      <h3>Model card (README.md)</h3>
      <pre className="readme" data-testid="readme">{r.readme}</pre>
    </section>
  );
}
