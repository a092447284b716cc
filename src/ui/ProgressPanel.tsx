import { useApp } from '../state/store';
import { formatBytes, formatDuration, progressView, TENSOR_STEPS } from '../state/derive';
import { ErrorBox } from './ErrorBox';
import { formatRate } from '../core/progress';

export function ProgressPanel() {
  const status = useApp((s) => s.status);
  const p = useApp((s) => s.progress);
  const backend = useApp((s) => s.backendInfo);
  const notices = useApp((s) => s.notices);
  const error = useApp((s) => s.error);
  const caps = useApp((s) => s.caps);
  const choice = useApp((s) => s.backend);
  if (status === 'idle' && notices.length === 0) return null;
  // A run that failed while reading headers has no tensor progress worth showing.
  const v = p && !(status === 'error' && p.tensorCount === 0) ? progressView(p, status === 'done') : null;
  return (
    <section className="panel" aria-labelledby="progress-h">
      <h2 id="progress-h">Progress</h2>
      {status === 'running' && !v && <p className="muted">Starting the worker…</p>}
      {v && (
        <>
          <div className="bar" role="progressbar" aria-label="Overall progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(v.fraction * 100)}>
            <div style={{ width: `${(v.fraction * 100).toFixed(1)}%` }} />
          </div>
          <div className="stats">
            <span><b>{(v.fraction * 100).toFixed(0)} %</b> overall</span>
            <span>tensor <b>{Math.min(v.tensorIndex + 1, v.tensorCount)}/{v.tensorCount}</b></span>
            <span>{formatBytes(v.bytesRead)} of {formatBytes(v.bytesToRead)} read</span>
            <span>read <b data-testid="read-rate">{formatRate(v.readBytesPerSec)}</b></span>
            {v.downloadMbPerSec !== null && <span>download <b>{v.downloadMbPerSec.toFixed(1)}</b> MB/s</span>}
            <span>elapsed {formatDuration(v.elapsedSeconds)}</span>
            {status === 'running' && <span>ETA <b>{v.etaSeconds === null ? '—' : formatDuration(v.etaSeconds)}</b></span>}
          </div>
          {status === 'running' && (
            <>
              <div className="steps" aria-label="Current tensor phase">
                {TENSOR_STEPS.map((st, i) => (
                  <span key={st} className={i === v.step ? 'active' : v.step > i ? 'done' : ''}>{st}</span>
                ))}
                <span style={{ border: 0, background: 'none' }}>{v.step < 0 ? v.phaseLabel : <code>{v.tensorName}</code>}</span>
              </div>
              {p && (p.phase === 'calibrate' || p.phase === 'gptq') && p.message && (
                <p className="muted" data-testid="gptq-progress" style={{ margin: '4px 0 0' }}>{p.phase === 'gptq' ? 'GPTQ' : 'Calibration'}: {p.message}</p>
              )}
            </>
          )}
        </>
      )}
      {backend && (
        <p className="muted" style={{ marginBottom: 4 }}>
          Backend: <b>{backend.name === 'webgpu' ? 'WebGPU' : 'CPU'}</b> — {backend.description}
          {backend.name === 'cpu' && caps?.worker?.adapter && choice === 'cpu' ? ' (a GPU adapter exists; backend "auto" uses it when it measures faster for the model)' : ''}
        </p>
      )}
      {notices.map((n, i) => <div key={i} className="notice" role="status">{n}</div>)}
      {status === 'error' && error && <ErrorBox error={error} title={error.name === 'InputError' ? 'The model could not be processed' : 'The run failed'} />}
    </section>
  );
}
