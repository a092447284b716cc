import { useState } from 'react';
import { useApp } from '../state/store';
import { LayerChart } from './LayerChart';
import { CalibChart } from './CalibChart';
import { TensorTable } from './TensorTable';
import { HistogramPanel } from './HistogramPanel';
import { BlockCompare } from './BlockCompare';

/** Per-layer chart, per-tensor table, and the selected tensor's histograms and block-size comparison. */
export function InspectPanel() {
  const [filter, setFilter] = useState('');
  const selected = useApp((s) => s.selected);
  return (
    <section className="panel" aria-labelledby="inspect-h">
      <h2 id="inspect-h">Inspect: quantization error per layer and tensor</h2>
      <LayerChart onPickLayer={(l) => setFilter(l === null ? '' : `layer ${l}`)} />
      <CalibChart />
      <div className="grid inspect" style={{ marginTop: 12 }}>
        <TensorTable filter={filter} setFilter={setFilter} />
        <div>
          {selected ? <HistogramPanel name={selected} /> : <p className="muted">Click a tensor in the table to see its histograms.</p>}
          {selected && <BlockCompare name={selected} />}
        </div>
      </div>
    </section>
  );
}
