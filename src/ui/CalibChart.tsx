import { useMemo } from 'react';
import { useApp } from '../state/store';
import { calibLayerSeries, pct } from '../state/derive';
import { COLORS, useCanvas } from './useCanvas';

const PAD = { l: 48, r: 10, t: 10, b: 22 };

/** GPTQ runs: mean output error on the calibration data per layer, RTN beside GPTQ (same scales, same inputs). */
export function CalibChart() {
  const reports = useApp((s) => s.reports);
  const series = useMemo(() => calibLayerSeries(reports), [reports]);
  const ref = useCanvas(
    (ctx, w, h) => {
      const { layers, error, baseline, max } = series;
      const plotW = w - PAD.l - PAD.r;
      const plotH = h - PAD.t - PAD.b;
      ctx.font = '11px system-ui, sans-serif';
      ctx.strokeStyle = COLORS.grid;
      const top = max > 0 ? max * 1.1 : 1;
      for (let i = 0; i <= 4; i++) {
        const y = PAD.t + plotH - (plotH * i) / 4;
        ctx.beginPath();
        ctx.moveTo(PAD.l, y);
        ctx.lineTo(w - PAD.r, y);
        ctx.stroke();
        ctx.fillStyle = COLORS.text;
        ctx.fillText(pct((top * i) / 4, 1), 2, y + 4);
      }
      const slot = plotW / Math.max(1, layers.length);
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
    150,
  );
  if (series.layers.length === 0) return null;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return (
    <div data-testid="calib-chart" style={{ marginTop: 10 }}>
      <div className="legend">
        <span><i style={{ background: COLORS.before }} />RTN (same scales)</span>
        <span><i style={{ background: COLORS.after }} />GPTQ (as written)</span>
        <span className="muted">mean output error ‖(W−Ŵ)X‖/‖WX‖ on the calibration data per layer — GPTQ {pct(mean(series.error), 2)} vs RTN {pct(mean(series.baseline), 2)}</span>
      </div>
      <canvas ref={ref} role="img" aria-label={`Per-layer output error on calibration data, GPTQ vs RTN, ${series.layers.length} layers`} />
    </div>
  );
}
