import { MAP_PROJECTIONS, projLabel, type CellBits, type PrecisionCell, type PrecisionMapView } from '../state/precision';

const cls = (b: CellBits): string => `pm-cell pm-${b}`;

function Cell({ c }: { c: PrecisionCell }) {
  return (
    <td className={cls(c.bits)} title={c.tooltip} data-testid="pm-cell" data-name={c.name} data-bits={String(c.bits)} data-learned={c.learned ? 'true' : 'false'}>
      {c.text}{c.overridden && <sup aria-label="override">*</sup>}
    </td>
  );
}

/** Layers × projections (and embeddings / head), coloured by bits; the number in each cell, "L" for a learned codebook. */
export function PrecisionMap({ view, title }: { view: PrecisionMapView; title: string }) {
  const legend: { bits: CellBits; label: string; n: number }[] = [
    { bits: 4, label: '4-bit', n: view.counts['4'] },
    { bits: 8, label: '8-bit', n: view.counts['8'] },
    { bits: 'budget', label: '4 or 8 — chosen by calibration', n: view.counts.budget },
    { bits: 16, label: '16-bit (unquantized)', n: view.counts['16'] },
  ];
  return (
    <div className="precision-map" data-testid="precision-map" data-source={view.source}>
      <h3>{title}</h3>
      <table>
        <thead>
          <tr><th scope="col">layer</th>{MAP_PROJECTIONS.map((p) => <th key={p} scope="col">{projLabel(p)}</th>)}</tr>
        </thead>
        <tbody>
          {view.layers.map((l) => (
            <tr key={l.layer}>
              <th scope="row">{l.layer}</th>
              {l.cells.map((c, i) => (c ? <Cell key={c.name} c={c} /> : <td key={i} className="pm-cell pm-none">—</td>))}
            </tr>
          ))}
        </tbody>
      </table>
      {view.extras.length > 0 && (
        <table className="pm-extras">
          <tbody><tr>{view.extras.map((c) => <th key={`h-${c.name}`} scope="col">{c.label}</th>)}</tr><tr>{view.extras.map((c) => <Cell key={c.name} c={c} />)}</tr></tbody>
        </table>
      )}
      <p className="pm-legend muted">
        {legend.filter((l) => l.n > 0).map((l) => <span key={String(l.bits)}><i className={cls(l.bits)} aria-hidden="true" /> {l.label} ({l.n})</span>)}
        {view.learnedCount > 0 && <span>L = learned codebook ({view.learnedCount})</span>}
        {view.layers.some((l) => l.cells.some((c) => c?.overridden)) && <span>* = set by a bits override</span>}
        {view.fraction8 !== null && <span data-testid="pm-fraction8">{(view.fraction8 * 100).toFixed(1)} % of the quantized projection parameters at 8 bits</span>}
      </p>
    </div>
  );
}
