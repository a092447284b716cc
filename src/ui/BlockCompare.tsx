import { useApp } from '../state/store';
import { compareBlocks } from '../state/actions';
import { db, pct } from '../state/derive';

/** Plain RTN vs block rotations 16…256 vs full, on the same weights of the selected tensor. */
export function BlockCompare({ name }: { name: string }) {
  const c = useApp((s) => s.comparison);
  const report = useApp((s) => s.reports.find((r) => r.name === name));
  if (!report || report.kind === 'norm' || !report.quantized) return null;
  const mine = c.tensor === name ? c : { state: 'idle' as const };
  const max = mine.state === 'ok' && mine.data ? Math.max(...mine.data.rows.map((r) => r.relError)) : 1;
  return (
    <div style={{ marginTop: 12 }}>
      <div className="row">
        <h3 style={{ flex: '1 1 auto' }}>Block-size comparison</h3>
        <button className="secondary" style={{ flex: '0 0 auto' }} disabled={mine.state === 'loading'} onClick={() => void compareBlocks(name)}>
          {mine.state === 'loading' ? 'Comparing…' : 'Compare block sizes'}
        </button>
      </div>
      {mine.state === 'error' && <div className="error">{mine.error}</div>}
      {mine.state === 'ok' && mine.data && (
        <>
          <table className="compare" data-testid="block-compare">
            <thead><tr><th>rotation</th><th>rel. error</th><th>SQNR</th><th className="barcell" /></tr></thead>
            <tbody>
              {mine.data.rows.map((r) => (
                <tr key={r.label}>
                  <td>{r.label}</td>
                  <td>{pct(r.relError)}</td>
                  <td>{db(r.sqnrDb)}</td>
                  <td className="barcell"><div className={`mini ${r.rotation === 'none' ? 'plain' : ''}`} style={{ width: `${(r.relError / max) * 100}%` }} /></td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted" style={{ fontSize: 12 }}>
            W{mine.data.bits}, same scheme, clip and seed as the run.{mine.data.skipped.length ? ` Skipped: ${mine.data.skipped.join('; ')}.` : ''}
          </p>
        </>
      )}
    </div>
  );
}
