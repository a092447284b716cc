import { useMemo, useRef } from 'react';
import { useApp } from '../state/store';
import { layerSeries, pct } from '../state/derive';
import { COLORS, useCanvas } from './useCanvas';

const PAD = { l: 48, r: 10, t: 10, b: 22 };

/** Mean relative error per layer: with rotation (written) beside plain RTN. Click a layer to filter the table. */
export function LayerChart({ onPickLayer }: { onPickLayer: (layer: number | null) => void }) {
  const reports = useApp((s) => s.reports);
  const series = useMemo(() => layerSeries(reports), [reports]);
  const geom = useRef({ width: 0 });
  const ref = useCanvas(
    (ctx, w, h) => {
      geom.current.width = w;
      const { layers, error, baseline, max } = series;
      const plotW = w - PAD.l - PAD.r;
      const plotH = h - PAD.t - PAD.b;
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = COLORS.text;
      ctx.strokeStyle = COLORS.grid;
      const top = max > 0 ? max * 1.1 : 1;
      for (let i = 0; i <= 4; i++) {
        const y = PAD.t + plotH - (plotH * i) / 4;
        ctx.beginPath();
        ctx.moveTo(PAD.l, y);
        ctx.lineTo(w - PAD.r, y);
        ctx.stroke();
        ctx.fillText(pct((top * i) / 4, 1), 2, y + 4);
      }
      if (layers.length === 0) {
        ctx.fillText('no quantized layers yet', PAD.l + 8, PAD.t + 16);
        return;
      }
      const slot = plotW / layers.length;
      const bw = Math.max(1, Math.min(16, slot * 0.38));
      layers.forEach((l, i) => {
        const x = PAD.l + i * slot + slot / 2;
        const hb = (baseline[i] / top) * plotH;
        const he = (error[i] / top) * plotH;
        ctx.fillStyle = COLORS.before;
        ctx.fillRect(x - bw, PAD.t + plotH - hb, bw, hb);
        ctx.fillStyle = COLORS.after;
        ctx.fillRect(x, PAD.t + plotH - he, bw, he);
        if (layers.length <= 40 || i % Math.ceil(layers.length / 40) === 0) {
          ctx.fillStyle = COLORS.text;
          ctx.fillText(String(l), x - 4, h - 6);
        }
      });
    },
    [series],
    170,
  );
  const onClick = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const n = series.layers.length;
    if (!n) return;
    const rect = e.currentTarget.getBoundingClientRect();
    const i = Math.floor(((e.clientX - rect.left - PAD.l) / (rect.width - PAD.l - PAD.r)) * n);
    onPickLayer(i >= 0 && i < n ? series.layers[i] : null);
  };
  return (
    <div>
      <div className="legend">
        <span><i style={{ background: COLORS.before }} />plain RTN (no rotation)</span>
        <span><i style={{ background: COLORS.after }} />as written (with the chosen rotation)</span>
        <span className="muted">mean relative error of each layer's projections — click a layer to filter the table</span>
      </div>
      <canvas ref={ref} onClick={onClick} role="img" aria-label={`Per-layer relative error, ${series.layers.length} layers`} data-testid="layer-chart" />
    </div>
  );
}
