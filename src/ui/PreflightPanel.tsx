import { applySettings } from '../state/actions';
import { estimateRun, formatBytes, formatCount, formatDuration, modelSize, preRunWarnings } from '../state/derive';
import { useApp } from '../state/store';
import { ErrorBox } from './ErrorBox';
import { PrecisionMap } from './PrecisionMap';
import { plannedPrecisionMap } from '../state/precision';

/** Before running: what the model is (from its headers only), what the run will cost, and whether it can run. */
export function PreflightPanel() {
  const pf = useApp((s) => s.preflight);
  const settings = useApp((s) => s.settings);
  const backend = useApp((s) => s.backend);
  const caps = useApp((s) => s.caps);
  const destination = useApp((s) => s.destination);
  const kind = useApp((s) => s.modelKind);
  const calibration = useApp((s) => s.calibration);
  const info = pf.info;
  const warnings = preRunWarnings(info, caps, destination);
  const est = info ? estimateRun(modelSize(info), info.outputBytes, settings, backend, calibration.backends, kind, destination) : null;
  return (
    <section className="panel" aria-labelledby="pre-h" aria-busy={pf.state === 'loading'} data-testid="preflight-panel">
      <h2 id="pre-h">Before running</h2>
      {pf.state === 'none' && <p className="muted">Pick a model to see its size and an estimate.</p>}
      {pf.state === 'loading' && !info && <p className="muted">Reading config and safetensors headers…</p>}
      {pf.state === 'error' && pf.error && <ErrorBox error={pf.error} title="This model cannot be processed" />}
      {info && pf.state !== 'error' && (
        <>
          <p className="muted" style={{ marginTop: 0 }}>
            <b>{info.label}</b> · d={info.config.hidden}, {info.config.layers} layers, {info.config.heads}/{info.config.kvHeads} heads, vocab {info.config.vocab}
            {info.config.tied ? ', tied embeddings' : ''} · {info.dtypes.join('/')}
          </p>
          {info.blocking && (
            <div className="error" role="alert" data-testid="blocking">
              <b>These settings cannot run on this model.</b> {info.blocking}
              {info.suggestions.length > 0 && (
                <div className="buttons" style={{ marginTop: 8 }}>
                  {info.suggestions.map((sg) => (
                    <button key={sg.label} type="button" className="secondary" onClick={() => applySettings(sg.settings)}>
                      Apply: {sg.label}
                    </button>
                  ))}
                </div>
              )}
            </div>
          )}
          <div className="facts" data-testid="preflight">
            <div className="fact"><b>{formatBytes(info.tensorBytes)}</b><span>model size</span></div>
            <div className="fact"><b>{info.tensorCount}</b><span>tensors ({formatCount(info.parameters)} params)</span></div>
            <div className="fact"><b>{info.quantizedCount}</b><span>to quantize</span></div>
            <div className="fact"><b>≈ {formatBytes(info.outputBytes)}</b><span>bundle size</span></div>
            {est && (
              <div className="fact" data-testid="estimate">
                <b>{est.chosen ? `≈ ${formatDuration(est.chosen.seconds)}` : '…'}</b>
                <span>{est.chosen ? `estimated time (${est.chosen.backend === 'cpu' ? 'CPU' : 'WebGPU'}${kind === 'hub' ? ', with the download' : ''})` : 'timing the backends…'}</span>
              </div>
            )}
            {est && <div className="fact"><b>≈ {formatBytes(est.peakMemoryBytes)}</b><span>peak memory</span></div>}
          </div>
          {est && est.backends.length > 0 && (
            <p className="muted" data-testid="estimate-detail">
              Measured on this machine (the pipeline timed on two small models):{' '}
              {est.backends.map((b, i) => (
                <span key={b.backend}>{i > 0 ? ' · ' : ''}{b.backend === 'cpu' ? 'CPU' : `WebGPU (${b.description}${b.software ? ', software' : ''})`} ≈ <b>{formatDuration(b.seconds)}</b></span>
              ))}
              {kind === 'hub' && <> · download {formatBytes(info.tensorBytes)} ≈ {formatDuration(est.downloadSeconds)} at an assumed 50 MB/s</>}
              {backend === 'auto' && est.chosen && <> · “auto” uses the {est.chosen.backend === 'cpu' ? 'CPU' : 'WebGPU'} backend</>}
            </p>
          )}
          {info.hadamard && <p className="muted">Residual rotation: {info.hadamard}</p>}
          {info.tensors.length > 0 && <PrecisionMap view={plannedPrecisionMap(info.tensors, settings)} title="Precision map (planned)" />}
        </>
      )}
      {warnings.map((w) => <div key={w} className="notice" role="note">{w}</div>)}
    </section>
  );
}
