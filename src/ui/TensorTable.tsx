import { useMemo, useState } from 'react';
import { useApp } from '../state/store';
import { db, gainText, pct, tensorRows, type SortKey } from '../state/derive';
import { selectTensor } from '../state/actions';

const COLUMNS: { key: SortKey | null; label: string }[] = [
  { key: 'layer', label: 'layer' },
  { key: 'proj', label: 'tensor' },
  { key: null, label: 'shape' },
  { key: null, label: 'scale' },
  { key: 'error', label: 'rel. error' },
  { key: 'baseline', label: 'plain RTN' },
  { key: 'sqnr', label: 'SQNR' },
  { key: null, label: 'plain SQNR' },
  { key: 'gain', label: 'gain vs RTN' },
];

/** GPTQ runs: the output error on the calibration data beside the weight error. */
const CALIB_COLUMNS: { key: SortKey; label: string }[] = [
  { key: 'calib', label: 'output err. GPTQ' },
  { key: 'calibRtn', label: 'output err. RTN' },
];

export function TensorTable({ filter, setFilter }: { filter: string; setFilter: (f: string) => void }) {
  const reports = useApp((s) => s.reports);
  const selected = useApp((s) => s.selected);
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'order', desc: false });
  const rows = useMemo(() => tensorRows(reports, filter, sort.key, sort.desc), [reports, filter, sort]);
  const withCalib = useMemo(() => reports.some((r) => r.calibError), [reports]);
  const columns = withCalib ? [...COLUMNS, ...CALIB_COLUMNS] : COLUMNS;
  const sortBy = (key: SortKey) => setSort((s) => ({ key, desc: s.key === key ? !s.desc : key !== 'layer' && key !== 'proj' }));
  return (
    <div>
      <div className="row" style={{ marginBottom: 6 }}>
        <label className="field">
          <span>Filter</span>
          <input type="text" value={filter} placeholder="e.g. q_proj, layers.3, layer 2" onChange={(e) => setFilter(e.target.value)} aria-label="Filter tensors" />
        </label>
      </div>
      <div className="table-wrap">
        <table className="tensors" data-testid="tensor-table">
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th key={i} aria-sort={c.key && sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : undefined}>
                  {c.key ? (
                    <button onClick={() => sortBy(c.key!)} title={`Sort by ${c.label}`}>
                      {c.label}{sort.key === c.key ? (sort.desc ? ' ▾' : ' ▴') : ''}
                    </button>
                  ) : (
                    <button disabled>{c.label}</button>
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.name} className={r.name === selected ? 'selected' : ''} aria-selected={r.name === selected} onClick={() => selectTensor(r.name)}>
                <td>{r.layer ?? '—'}</td>
                <td title={r.name}><button className="link" onClick={(e) => { e.stopPropagation(); selectTensor(r.name); }}>{r.proj}</button></td>
                <td>{r.shape}</td>
                <td>{r.scale}</td>
                <td>{pct(r.error)}</td>
                <td>{pct(r.baseline)}</td>
                <td>{db(r.sqnr)}</td>
                <td>{db(r.baselineSqnr)}</td>
                <td className={r.gain === null ? '' : r.gain > 0 ? 'better' : r.gain < 0 ? 'worse' : ''}>{gainText(r.gain)}</td>
                {withCalib && (
                  <>
                    <td data-col="calib" className={r.calib === null || r.calibRtn === null ? '' : r.calib < r.calibRtn ? 'better' : r.calib > r.calibRtn ? 'worse' : ''}>{pct(r.calib)}</td>
                    <td data-col="calib-rtn">{pct(r.calibRtn)}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted" style={{ fontSize: 12 }}>{rows.length} tensors shown. "gain vs RTN": how many percentage points lower the relative weight error is than plain RTN (+ = lower, green). Weight error is a proxy — “Check quality” measures perplexity and KL.{withCalib && ' "output err.": ‖(W−Ŵ)X‖/‖WX‖ on the calibration inputs X, for what GPTQ wrote and for round-to-nearest with the same scales (green: GPTQ lower) — GPTQ trades weight error for output error.'}</p>
    </div>
  );
}
