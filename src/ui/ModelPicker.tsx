import { useRef, useState } from 'react';
import { useApp } from '../state/store';
import { estimateRun, formatBytes, formatDuration } from '../state/derive';
import { knownModelSize, QWEN25_MODELS } from '../core/estimate';
import { dropFiles, lookUpHubModel, pickFiles, setDemo, setHubUrl, setModelKind, setRepo, setRevision, setToken } from '../state/actions';
import type { ModelKind } from '../state/store';

const SUGGESTED = [
  'Qwen/Qwen2.5-0.5B', 'Qwen/Qwen2.5-0.5B-Instruct', 'Qwen/Qwen2.5-1.5B', 'Qwen/Qwen2.5-1.5B-Instruct',
  'Qwen/Qwen2.5-3B', 'Qwen/Qwen2.5-3B-Instruct', 'Qwen/Qwen2.5-7B', 'Qwen/Qwen2.5-7B-Instruct',
];

const TABS: { kind: ModelKind; label: string }[] = [
  { kind: 'demo', label: 'Demo model' },
  { kind: 'hub', label: 'Hugging Face Hub' },
  { kind: 'files', label: 'Files / folder' },
];

export function ModelPicker() {
  const kind = useApp((s) => s.modelKind);
  const running = useApp((s) => s.status === 'running');
  return (
    <section className="panel" aria-labelledby="model-h">
      <h2 id="model-h">Model</h2>
      <div className="tabs" role="tablist">
        {TABS.map((t) => (
          <button key={t.kind} role="tab" aria-selected={kind === t.kind} disabled={running} onClick={() => setModelKind(t.kind)}>
            {t.label}
          </button>
        ))}
      </div>
      <fieldset disabled={running} style={{ border: 0, padding: 0, margin: 0 }}>
        {kind === 'demo' && <DemoPicker />}
        {kind === 'hub' && <HubPicker />}
        {kind === 'files' && <FilesPicker />}
      </fieldset>
    </section>
  );
}

function DemoPicker() {
  const demos = useApp((s) => s.demos);
  const demoName = useApp((s) => s.demoName);
  const err = useApp((s) => s.demosError);
  if (err) return <div className="notice">{err}</div>;
  if (!demos.length) return <p className="muted">Loading the demo list…</p>;
  return (
    <div className="demo-list" role="radiogroup" aria-label="Demo models">
      {demos.map((d) => (
        <label key={d.name} className={`demo-item ${d.name === demoName ? 'selected' : ''}`}>
          <input type="radio" name="demo" value={d.name} checked={d.name === demoName} onChange={() => setDemo(d.name)} />
          <span>
            <b>{d.title}</b> <code>{d.name}</code> · {formatBytes(d.bytes)}
            <small>{d.description}</small>
          </span>
        </label>
      ))}
    </div>
  );
}

function HubPicker() {
  const repo = useApp((s) => s.repo);
  const revision = useApp((s) => s.revision);
  const hubUrl = useApp((s) => s.hubUrl);
  const hasToken = useApp((s) => s.hasToken);
  return (
    <form onSubmit={(e) => { e.preventDefault(); lookUpHubModel(); }}>
      <div className="row">
        <label className="field" style={{ flex: '2 1 240px' }}>
          <span>Repository</span>
          <input type="text" list="suggested-repos" value={repo} placeholder="Qwen/Qwen2.5-0.5B" onChange={(e) => setRepo(e.target.value)} onBlur={lookUpHubModel} spellCheck={false} />
          <datalist id="suggested-repos">{SUGGESTED.map((r) => <option key={r} value={r} />)}</datalist>
        </label>
        <label className="field">
          <span>Revision</span>
          <input type="text" value={revision} onChange={(e) => setRevision(e.target.value)} onBlur={lookUpHubModel} spellCheck={false} />
        </label>
      </div>
      <div className="row" style={{ marginTop: 8 }}>
        <label className="field">
          <span>Access token (optional, kept in memory only)</span>
          <input type="password" autoComplete="off" placeholder="hf_…" onChange={(e) => setToken(e.target.value)} onBlur={() => hasToken && lookUpHubModel()} />
        </label>
        {hubUrl && (
          <label className="field">
            <span>Hub address</span>
            <input type="text" value={hubUrl} onChange={(e) => setHubUrl(e.target.value)} onBlur={lookUpHubModel} />
          </label>
        )}
        <button type="submit" className="secondary" style={{ flex: '0 0 auto' }}>Look up</button>
      </div>
      <p className="muted" style={{ marginBottom: 0 }}>
        Tensors are streamed with range requests, one at a time. The token is sent only to the Hub — never put in the link, the bundle, storage or logs.
      </p>
      <HubEstimates />
    </form>
  );
}

/** Before any download: what each Qwen2.5 size costs here, from the measured backend calibration. */
function HubEstimates() {
  const settings = useApp((s) => s.settings);
  const backend = useApp((s) => s.backend);
  const destination = useApp((s) => s.destination);
  const cal = useApp((s) => s.calibration);
  return (
    <div data-testid="hub-estimates">
      <h3>Estimates for Qwen2.5 (these settings, this machine)</h3>
      {cal.state !== 'done' || cal.backends.length === 0 ? (
        <p className="muted">{cal.state === 'running' || cal.state === 'none' ? 'Timing the backends on two small models…' : 'No backend could be timed; no estimate.'}</p>
      ) : (
        <table className="cmp">
          <thead>
            <tr>
              <th>model</th><th>download</th>
              {cal.backends.map((b) => <th key={b.backend}>{b.backend === 'cpu' ? 'CPU' : `WebGPU${b.software ? ' (software)' : ''}`}</th>)}
              <th>peak memory</th>
            </tr>
          </thead>
          <tbody>
            {QWEN25_MODELS.map((m) => {
              const size = knownModelSize(m, settings.quantizeEmbeddings);
              const outBytes = size.tensorBytes * 1.02; // f16 weights on the grid plus small scale tensors
              const est = estimateRun(size, outBytes, settings, backend, cal.backends, 'hub', destination);
              return (
                <tr key={m.repo}>
                  <td><button type="button" className="link" onClick={() => { setRepo(m.repo); lookUpHubModel(); }}>{m.repo.split('/')[1]}</button></td>
                  <td>{formatBytes(size.tensorBytes)} ≈ {formatDuration(est.downloadSeconds)}</td>
                  {est.backends.map((b) => <td key={b.backend} className={est.chosen?.backend === b.backend ? 'better' : ''}>{formatDuration(b.seconds)}</td>)}
                  <td>{formatBytes(est.peakMemoryBytes)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <p className="muted" style={{ marginTop: 0 }}>Compute time scaled from the measured calibration; the download at an assumed 50 MB/s. Green: what “auto” would use.{destination === 'zip' ? ' Peak memory includes the zip, which is built in memory.' : ''}</p>
    </div>
  );
}

function FilesPicker() {
  const files = useApp((s) => s.files);
  const [over, setOver] = useState(false);
  const folderInput = useRef<HTMLInputElement>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  return (
    <div
      className={`dropzone ${over ? 'over' : ''}`}
      data-testid="dropzone"
      onDragOver={(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => { e.preventDefault(); e.stopPropagation(); setOver(false); void dropFiles(e.dataTransfer); }}
    >
      <div>Drop a model folder or its files here (config.json, *.safetensors, tokenizer files)</div>
      <div className="buttons">
        <button type="button" className="secondary" onClick={() => folderInput.current?.click()}>Choose folder…</button>
        <button type="button" className="secondary" onClick={() => filesInput.current?.click()}>Choose files…</button>
      </div>
      <input ref={folderInput} className="sr-only" type="file" tabIndex={-1} aria-hidden="true"
        {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
        onChange={(e) => { pickFiles(e.target.files); e.target.value = ''; }} />
      <input ref={filesInput} className="sr-only" type="file" multiple tabIndex={-1} aria-hidden="true"
        onChange={(e) => { pickFiles(e.target.files); e.target.value = ''; }} />
      {files && (
        <p style={{ marginBottom: 0 }}>
          <b>{files.label}</b>: {files.count} files, {formatBytes(files.bytes)}
        </p>
      )}
    </div>
  );
}
