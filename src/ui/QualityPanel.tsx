/**
 * "Check quality" (SPEC §7): perplexity, KL and top-1 agreement of the quantized model against
 * the original, and a greedy generation of each — computed in the worker (src/eval/check.ts);
 * this panel holds the choices and shows the outcome.
 */
import { useRef, useState } from 'react';
import { SEQLEN_CHOICES } from '../eval/calibration';
import { formatBytes, formatDuration } from '../state/derive';
import {
  cancelQuality, chooseText, downloadCardFile, dropPairFiles, effectiveTarget, effectiveTextKind, pickPairFiles, qualityProgressView,
  rtnComparisonAvailable, runQuality, runTargetAvailable, setQuality, setQualityTextFile, textChoices, useBuiltinTextAndRun,
} from '../state/quality';
import { useApp, type QualityState, type QualityTextKind } from '../state/store';
import type { QualityDevice, QualityReport } from '../worker/protocol';
import { ErrorBox } from './ErrorBox';

export function QualityPanel() {
  const st = useApp((s) => s.quality);
  const pipelineRunning = useApp((s) => s.status === 'running');
  const noWorkerGpu = useApp((s) => !!s.caps?.worker && !(s.caps.worker.webgpu && s.caps.worker.adapter));
  const bundleName = useApp((s) => s.result?.bundleName);
  // Subscriptions the derived choices read (hub address, demo list, run state).
  useApp((s) => s.hubUrl);
  useApp((s) => s.demos);
  useApp((s) => s.status);
  const textInput = useRef<HTMLInputElement>(null);
  if (pipelineRunning) return null;
  const runOk = runTargetAvailable();
  const target = effectiveTarget();
  const textKind = effectiveTextKind();
  const running = st.status === 'running';
  return (
    <section className="panel" aria-labelledby="quality-h" data-testid="quality" data-quality-status={st.status}>
      <h2 id="quality-h">Check quality</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        Perplexity of the original and the quantized model on the same text (non-overlapping windows), the mean KL divergence and top-1
        agreement of their next-token predictions, and a greedy generation of each — computed in this tab.
      </p>
      <fieldset disabled={running} style={{ border: 0, padding: 0, margin: 0 }}>
        {runOk && (
          <div className="row" role="radiogroup" aria-label="What to check" style={{ marginBottom: 10 }}>
            <label className="check"><input type="radio" name="q-target" checked={target === 'run'} onChange={() => setQuality('target', 'run')} /> this run’s bundle <code>{bundleName}</code></label>
            <label className="check"><input type="radio" name="q-target" checked={target === 'files'} onChange={() => setQuality('target', 'files')} /> another bundle and its original model (drop both)</label>
          </div>
        )}
        {target === 'files' && (
          <div className="pair-zones">
            <PairZone which="original" title="Original model" info={st.original} />
            <PairZone which="bundle" title="Quantized bundle" info={st.bundle} />
          </div>
        )}
        <div className="settings" style={{ marginTop: 10 }}>
          <label className="field" style={{ gridColumn: 'span 2' }}>
            <span>Evaluation text</span>
            <select value={textKind} onChange={(e) => {
              const k = e.target.value as QualityTextKind;
              chooseText(k);
              if (k === 'file' && !st.textFile) textInput.current?.click();
            }}>
              {textChoices().map((c) => <option key={c.kind} value={c.kind}>{c.label}</option>)}
            </select>
          </label>
          <label className="field">
            <span>Window length (tokens)</span>
            <select value={st.seqlen} onChange={(e) => setQuality('seqlen', Number(e.target.value))}>
              {SEQLEN_CHOICES.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </label>
          <label className="field">
            <span>Windows (0 = all)</span>
            <input type="number" min={0} step={1} value={st.windows}
              onChange={(e) => { const v = Number(e.target.value); if (Number.isInteger(v) && v >= 0) setQuality('windows', v); }} />
          </label>
          <label className="field" style={{ gridColumn: 'span 2' }}>
            <span>Prompt</span>
            <input type="text" value={st.prompt} onChange={(e) => setQuality('prompt', e.target.value)} />
          </label>
          <label className="field">
            <span>Generated tokens</span>
            <input type="number" min={0} max={512} step={1} value={st.genTokens}
              onChange={(e) => { const v = Number(e.target.value); if (Number.isInteger(v) && v >= 0 && v <= 512) setQuality('genTokens', v); }} />
          </label>
          <label className="field" title="auto: WebGPU when the worker has an adapter, the CPU for tiny models">
            <span>Check device</span>
            <select value={st.device} onChange={(e) => setQuality('device', e.target.value as QualityDevice)}>
              <option value="auto">auto</option>
              <option value="webgpu" disabled={noWorkerGpu}>WebGPU{noWorkerGpu ? ' (not in this browser)' : ''}</option>
              <option value="cpu">CPU</option>
            </select>
          </label>
        </div>
        {rtnComparisonAvailable() && (
          <label className="check" style={{ marginTop: 10 }}>
            <input type="checkbox" checked={st.compareRtn} onChange={(e) => setQuality('compareRtn', e.target.checked)} />
            Compare with plain RTN: quantize the same model with rotation “none”, round-to-nearest on the integer grid, every tensor at the run’s bits (no GPTQ, learned codebook, budget or overrides; scheme, clip and embeddings as chosen) and score both on the same windows
          </label>
        )}
        {textKind === 'file' && (
          <p style={{ marginBottom: 0 }}>
            <button type="button" className="secondary" onClick={() => textInput.current?.click()}>Choose a text file…</button>{' '}
            {st.textFile ? <><b>{st.textFile.name}</b> <span className="muted">{formatBytes(st.textFile.bytes)}</span></> : <span className="muted">or drop a .txt file on this panel</span>}
          </p>
        )}
        <input ref={textInput} className="sr-only" type="file" accept=".txt,text/plain" tabIndex={-1} aria-hidden="true"
          onChange={(e) => { setQualityTextFile(e.target.files?.[0] ?? null); e.target.value = ''; }} />
      </fieldset>
      <div
        className="runbar"
        style={{ marginTop: 12 }}
        // A text file dropped here is the evaluation text (not a model for the page's picker).
        onDragOver={(e) => { if (e.dataTransfer.types.includes('Files')) { e.preventDefault(); e.stopPropagation(); } }}
        onDrop={(e) => { e.preventDefault(); e.stopPropagation(); const f = e.dataTransfer.files?.[0]; if (f) setQualityTextFile(f); }}
      >
        <button className="primary" onClick={() => void runQuality()} disabled={running}>Run check</button>
        <button className="secondary" onClick={() => void cancelQuality()} disabled={!running}>Cancel check</button>
        {running && <QualityProgressBar />}
      </div>
      {st.status === 'error' && st.error && (
        st.error.name === 'OfflineError' ? (
          <div className="error" role="alert" data-testid="error">
            <b>The evaluation text could not be fetched</b>
            <div>{st.error.message.charAt(0).toUpperCase() + st.error.message.slice(1)}.</div>
            <div className="buttons" style={{ marginTop: 8 }}>
              <button type="button" className="primary" onClick={() => useBuiltinTextAndRun()}>Use the built-in text</button>
              <button type="button" className="secondary" onClick={() => { chooseText('file'); textInput.current?.click(); }}>Choose a text file…</button>
            </div>
          </div>
        ) : <ErrorBox error={st.error} title="The quality check failed" />
      )}
      {st.status === 'done' && st.report && <QualityResult report={st.report} state={st} />}
    </section>
  );
}

function QualityProgressBar() {
  const p = useApp((s) => s.quality.progress);
  const v = qualityProgressView(p);
  return (
    <div style={{ flex: '1 1 300px' }} data-testid="quality-progress">
      <div className="bar" role="progressbar" aria-label="Quality check progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(v.fraction * 100)}>
        <div style={{ width: `${(v.fraction * 100).toFixed(1)}%` }} />
      </div>
      <span className="muted">{v.label} {v.count}</span>
    </div>
  );
}

function QualityResult({ report: r, state }: { report: QualityReport; state: QualityState }) {
  return (
    <div data-testid="quality-result" style={{ marginTop: 12 }}>
      <div className="facts">
        <div className="fact" data-testid="ppl-original"><b>{r.pplOriginal.toFixed(4)}</b><span>perplexity, original</span></div>
        <div className="fact" data-testid="ppl-quantized"><b>{r.pplQuantized.toFixed(4)}</b><span>perplexity, quantized ({r.pplChangePct >= 0 ? '+' : ''}{r.pplChangePct.toFixed(2)} %)</span></div>
        <div className="fact" data-testid="kl-mean"><b>{r.klMean.toExponential(3)}</b><span>mean KL(original ‖ quantized), nats/token</span></div>
        <div className="fact" data-testid="top1"><b>{(r.top1Agreement * 100).toFixed(2)} %</b><span>top-1 agreement</span></div>
      </div>
      {r.comparison && r.comparison.bundles.length > 1 && <ComparisonView c={r.comparison} />}
      <p className="muted" style={{ marginBottom: 4 }} data-testid="quality-device">
        {r.windows} of {r.windowsAvailable} windows × {r.seqlen} tokens ({r.predictions} predictions) of {r.textLabel ?? 'the text'} ({r.tokenCount} tokens),
        on <b>{r.device === 'webgpu' ? 'WebGPU' : 'CPU'}</b>{r.adapter ? <> — {r.adapter}</> : null}, in {formatDuration(r.elapsedMs / 1000)}.
      </p>
      {r.notice && <div className="notice" role="status">{r.notice}</div>}
      {r.generation && (
        <>
          <h3>Greedy generation from “{r.generation.prompt}” {r.genAgree !== undefined && <span className="muted">— first {r.genAgree} of {r.generation.originalIds.length} tokens agree</span>}</h3>
          <div className="gen-grid">
            <div><b>Original</b><pre className="gen" data-testid="gen-original">{r.generation.original}</pre></div>
            <div><b>Quantized</b><pre className="gen" data-testid="gen-quantized">{r.generation.quantized}</pre></div>
          </div>
        </>
      )}
      {state.cardUpdated === 'bundle' && (
        <p className="muted" style={{ marginBottom: 0 }}>
          The figures are now in the bundle’s README.md (“Quality check”){state.cardManifest !== null ? ', and manifest.sha256 matches it' : ''} — the model card above and “Download bundle” include them.
        </p>
      )}
      {state.cardUpdated === 'returned' && (
        <p style={{ marginBottom: 0 }}>
          The dropped bundle cannot be changed in place; its card with the figures:{' '}
          <button className="secondary" onClick={() => downloadCardFile('README.md')}>Download README.md</button>{' '}
          {state.cardManifest !== null && <button className="secondary" onClick={() => downloadCardFile('manifest.sha256')}>Download manifest.sha256</button>}
        </p>
      )}
      {state.cardUpdated === 'returned' && state.cardReadme && <pre className="readme" data-testid="quality-readme">{state.cardReadme}</pre>}
    </div>
  );
}

/** The bundles side by side: a table (original first) and bars of mean KL and perplexity change; the verdict by measurement. */
function ComparisonView({ c }: { c: NonNullable<QualityReport['comparison']> }) {
  const maxKl = Math.max(...c.bundles.map((b) => b.klMean));
  const maxPpl = Math.max(...c.bundles.map((b) => Math.abs(b.pplChangePct)));
  return (
    <div data-testid="comparison">
      <h3>Which is better, measured</h3>
      <table className="cmp" data-testid="comparison-table">
        <thead><tr><th>bundle</th><th>perplexity</th><th>change</th><th>mean KL (nats/token)</th><th>top-1 agreement</th></tr></thead>
        <tbody>
          <tr><td>original</td><td data-testid="cmp-ppl-original">{c.pplOriginal.toFixed(4)}</td><td>—</td><td>—</td><td>—</td></tr>
          {c.bundles.map((b, i) => (
            <tr key={b.label} className={i === c.best ? 'best' : ''} data-testid={`cmp-row-${i}`}>
              <td>{b.label}{i === c.best ? ' ★' : ''}</td>
              <td data-testid="cmp-ppl">{b.pplQuantized.toFixed(4)}</td>
              <td>{b.pplChangePct >= 0 ? '+' : ''}{b.pplChangePct.toFixed(2)} %</td>
              <td data-testid="cmp-kl">{b.klMean.toExponential(3)}</td>
              <td data-testid="cmp-top1">{(b.top1Agreement * 100).toFixed(2)} %</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="cmp-chart" role="img" aria-label="Mean KL and perplexity change per bundle (shorter is better)">
        {c.bundles.map((b, i) => (
          <Bars key={b.label} label={b.label} kl={b.klMean / (maxKl || 1)} ppl={Math.abs(b.pplChangePct) / (maxPpl || 1)} rtn={i > 0} klText={b.klMean.toExponential(2)} pplText={`${b.pplChangePct >= 0 ? '+' : ''}${b.pplChangePct.toFixed(2)} %`} />
        ))}
      </div>
      <p className="verdict" data-testid="comparison-verdict">{c.verdict}</p>
      <p className="muted" style={{ marginTop: 0 }}>Same {c.windows} windows × {c.seqlen} tokens of {c.textLabel} for every bundle; shorter bars are better. Weight error (the inspection table) is only a proxy.</p>
    </div>
  );
}

function Bars({ label, kl, ppl, rtn, klText, pplText }: { label: string; kl: number; ppl: number; rtn: boolean; klText: string; pplText: string }) {
  return (
    <>
      <span>{label} — KL</span>
      <div className="track"><div className={`fill ${rtn ? 'rtn' : ''}`} style={{ width: `${(kl * 100).toFixed(1)}%` }} /></div>
      <span>{klText}</span>
      <span>{label} — perplexity change</span>
      <div className="track"><div className={`fill ${rtn ? 'rtn' : ''}`} style={{ width: `${(ppl * 100).toFixed(1)}%` }} /></div>
      <span>{pplText}</span>
    </>
  );
}

function PairZone({ which, title, info }: { which: 'original' | 'bundle'; title: string; info: QualityState['original'] }) {
  const [over, setOver] = useState(false);
  const folder = useRef<HTMLInputElement>(null);
  const files = useRef<HTMLInputElement>(null);
  return (
    <div
      className={`dropzone ${over ? 'over' : ''}`}
      data-testid={`quality-drop-${which}`}
      onDragOver={(e) => { e.preventDefault(); e.stopPropagation(); setOver(true); }}
      onDragLeave={() => setOver(false)}
      // Not the page's model picker: these files are one side of the comparison.
      onDrop={(e) => { e.preventDefault(); e.stopPropagation(); setOver(false); void dropPairFiles(which, e.dataTransfer); }}
    >
      <div><b>{title}</b>: drop its folder or files here</div>
      <div className="buttons">
        <button type="button" className="secondary" onClick={() => folder.current?.click()}>Choose folder…</button>
        <button type="button" className="secondary" onClick={() => files.current?.click()}>Choose files…</button>
      </div>
      <input ref={folder} className="sr-only" type="file" tabIndex={-1} aria-hidden="true"
        {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
        onChange={(e) => { pickPairFiles(which, e.target.files); e.target.value = ''; }} />
      <input ref={files} className="sr-only" type="file" multiple tabIndex={-1} aria-hidden="true"
        onChange={(e) => { pickPairFiles(which, e.target.files); e.target.value = ''; }} />
      {info && <p style={{ marginBottom: 0 }}><b>{info.label}</b>: {info.count} files, {formatBytes(info.bytes)}</p>}
    </div>
  );
}
