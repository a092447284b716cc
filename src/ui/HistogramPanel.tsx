import { useMemo, useState } from 'react';
import { useApp } from '../state/store';
import { db, histogramView, pct } from '../state/derive';
import { COLORS, useCanvas } from './useCanvas';

const SERIES_COLOR = { 'before rotation': COLORS.before, 'after rotation': COLORS.after, 'after quantization': COLORS.quant } as const;
const PAD = { l: 8, r: 8, t: 8, b: 22 };

/** The selected tensor's weight histograms — before rotation, after rotation, after quantization — overlaid. */
export function HistogramPanel({ name }: { name: string }) {
  const report = useApp((s) => s.reports.find((r) => r.name === name));
  const [log, setLog] = useState(true);
  const view = useMemo(() => (report ? histogramView(report, log) : null), [report, log]);
  const ref = useCanvas(
    (ctx, w, h) => {
      if (!view) return;
      const plotW = w - PAD.l - PAD.r;
      const plotH = h - PAD.t - PAD.b;
      const bw = plotW / view.bins;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(PAD.l + plotW / 2, PAD.t);
      ctx.lineTo(PAD.l + plotW / 2, PAD.t + plotH);
      ctx.stroke();
      for (const s of view.series) {
        const color = SERIES_COLOR[s.label];
        // Quantized values sit on a few grid points: bars; continuous ones: a filled outline.
        if (s.label === 'after quantization') {
          ctx.fillStyle = color;
          // Thin, translucent bars on top, so the distributions behind stay readable.
          ctx.globalAlpha = 0.55;
          s.heights.forEach((v, i) => { if (v > 0) ctx.fillRect(PAD.l + i * bw + bw * 0.35, PAD.t + plotH * (1 - v), Math.max(1, bw * 0.3), plotH * v); });
          ctx.globalAlpha = 1;
        } else {
          ctx.beginPath();
          ctx.moveTo(PAD.l, PAD.t + plotH);
          s.heights.forEach((v, i) => {
            const y = PAD.t + plotH * (1 - v);
            ctx.lineTo(PAD.l + i * bw, y);
            ctx.lineTo(PAD.l + (i + 1) * bw, y);
          });
          ctx.lineTo(PAD.l + plotW, PAD.t + plotH);
          ctx.closePath();
          ctx.globalAlpha = 0.25;
          ctx.fillStyle = color;
          ctx.fill();
          ctx.globalAlpha = 1;
          ctx.strokeStyle = color;
          ctx.lineWidth = 1.5;
          ctx.stroke();
        }
        // max|W| of the series: dashed lines; outlier bins: triangles under the axis.
        if (s.absmaxPos) {
          ctx.setLineDash([4, 3]);
          ctx.strokeStyle = color;
          for (const p of s.absmaxPos) {
            ctx.beginPath();
            ctx.moveTo(PAD.l + p * plotW, PAD.t);
            ctx.lineTo(PAD.l + p * plotW, PAD.t + plotH);
            ctx.stroke();
          }
          ctx.setLineDash([]);
        }
        ctx.fillStyle = color;
        for (const i of s.outlierBins) {
          const x = PAD.l + (i + 0.5) * bw;
          ctx.beginPath();
          ctx.moveTo(x, PAD.t + plotH + 2);
          ctx.lineTo(x - 4, PAD.t + plotH + 9);
          ctx.lineTo(x + 4, PAD.t + plotH + 9);
          ctx.closePath();
          ctx.fill();
        }
      }
      ctx.fillStyle = COLORS.text;
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillText(`−${view.range.toPrecision(3)}`, PAD.l, h - 4);
      ctx.fillText('0', PAD.l + plotW / 2 - 3, h - 4);
      const right = view.range.toPrecision(3);
      ctx.fillText(right, w - PAD.r - ctx.measureText(right).width, h - 4);
    },
    [view],
    200,
  );
  if (!report) return null;
  return (
    <div data-testid="histograms">
      <h3 style={{ marginTop: 0 }}>{name}</h3>
      <div className="stats" style={{ marginTop: 0 }}>
        <span>shape <b>{report.shape.join('×')}</b></span>
        <span>max|W| <b>{report.absmaxBefore.toPrecision(3)}</b> → <b>{report.absmaxAfter.toPrecision(3)}</b></span>
        {report.error && <span>error <b>{pct(report.error.relError)}</b> ({db(report.error.sqnrDb)})</span>}
        {report.baselineError && <span>plain RTN <b>{pct(report.baselineError.relError)}</b> ({db(report.baselineError.sqnrDb)}){report.baselineError.sampled && <span className="muted">, estimated on {report.baselineError.sampled.rows} of {report.baselineError.sampled.of} rows</span>}</span>}
      </div>
      {view ? (
        <>
          <div className="legend" style={{ marginTop: 6 }}>
            {view.series.map((s) => <span key={s.label}><i style={{ background: SERIES_COLOR[s.label] }} />{s.label}</span>)}
            <span>▲ outliers (&gt; 4σ) · dashed: max|W|</span>
            <label className="check"><input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> log scale</label>
          </div>
          <canvas ref={ref} role="img" aria-label={`Histograms of ${name}`} data-testid="histogram-canvas" />
        </>
      ) : (
        <p className="muted">No histogram for this tensor.</p>
      )}
    </div>
  );
}
