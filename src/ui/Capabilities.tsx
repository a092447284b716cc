import { useApp } from '../state/store';
import { formatBytes } from '../state/derive';

/** What this browser offers: WebGPU (page and worker), adapter, storage. */
export function Capabilities() {
  const caps = useApp((s) => s.caps);
  if (!caps) return <div className="chips"><span className="chip">checking browser…</span></div>;
  const workerGpu = caps.worker ? caps.worker.webgpu && !!caps.worker.adapter : null;
  return (
    <div className="chips" aria-label="Browser capabilities">
      <span className={`chip ${caps.webgpu ? 'ok' : 'no'}`}>WebGPU {caps.webgpu ? 'present' : 'missing'}</span>
      {workerGpu !== null && <span className={`chip ${workerGpu ? 'ok' : 'no'}`}>in workers: {workerGpu ? 'yes' : 'no (CPU path)'}</span>}
      {caps.adapter && <span className="chip" title="GPU adapter">{caps.adapter}</span>}
      {caps.storage && caps.opfs && <span className="chip">storage free {formatBytes(Math.max(0, caps.storage.quota - caps.storage.usage))}</span>}
      {!caps.opfs && <span className="chip no" title={`Browser storage (OPFS): ${caps.opfsUnavailable ?? 'not in this browser'}. Bundles are saved as a .zip download instead.`}>no browser storage</span>}
    </div>
  );
}
