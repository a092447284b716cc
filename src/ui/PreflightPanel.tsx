import { useApp } from '../state/store';
import { estimateSeconds, formatBytes, formatCount, formatDuration, gpuClass, preRunWarnings } from '../state/derive';
import { ErrorBox } from './ErrorBox';

/** Before running: what the model is (from its headers only) and what the run will cost. */
export function PreflightPanel() {
  const pf = useApp((s) => s.preflight);
  const settings = useApp((s) => s.settings);
  const backend = useApp((s) => s.backend);
  const caps = useApp((s) => s.caps);
  const destination = useApp((s) => s.destination);
  const kind = useApp((s) => s.modelKind);
  const info = pf.info;
  const warnings = preRunWarnings(info, caps, destination);
  const gpu = gpuClass(caps);
  const onGpu = backend !== 'cpu' && gpu !== 'none';
  return (
    <section className="panel" aria-labelledby="pre-h" aria-busy={pf.state === 'loading'}>
      <h2 id="pre-h">3 · Before running</h2>
      {pf.state === 'none' && <p className="muted">Pick a model to see its size and an estimate.</p>}
      {pf.state === 'loading' && !info && <p className="muted">Reading config and safetensors headers…</p>}
      {pf.state === 'error' && pf.error && <ErrorBox error={pf.error} title="This model cannot be processed" />}
      {info && pf.state !== 'error' && (
        <>
          <p className="muted" style={{ marginTop: 0 }}>
            <b>{info.label}</b> · d={info.config.hidden}, {info.config.layers} layers, {info.config.heads}/{info.config.kvHeads} heads, vocab {info.config.vocab}
            {info.config.tied ? ', tied embeddings' : ''} · {info.dtypes.join('/')}
          </p>
          <div className="facts" data-testid="preflight">
            <div className="fact"><b>{formatBytes(info.tensorBytes)}</b><span>model size</span></div>
            <div className="fact"><b>{info.tensorCount}</b><span>tensors ({formatCount(info.parameters)} params)</span></div>
            <div className="fact"><b>{info.quantizedCount}</b><span>to quantize</span></div>
            <div className="fact"><b>≈ {formatBytes(info.outputBytes)}</b><span>bundle size</span></div>
            <div className="fact"><b>≈ {formatDuration(estimateSeconds(info, settings, backend, gpu, kind))}</b><span>estimated time ({onGpu ? (gpu === 'software' ? 'software GPU' : 'GPU') : 'CPU'})</span></div>
          </div>
          {info.hadamard && !info.hadamard.startsWith('not possible') && <p className="muted">Residual rotation: {info.hadamard}</p>}
        </>
      )}
      {warnings.map((w) => <div key={w} className="notice" role="note">{w}</div>)}
    </section>
  );
}
