import { BLOCK_SIZES, DEFAULT_SETTINGS, type Bits, type Clip, type OutputDtype, type RotationMode, type Scheme } from '../core/settings';
import { setBackend, setDestination, setSetting } from '../state/actions';
import { useApp, type Destination } from '../state/store';
import type { BackendChoice } from '../worker/protocol';
import { MethodSettings } from './MethodSettings';
import { LinkProblems, PrecisionSettings } from './PrecisionSettings';

export function SettingsPanel() {
  const s = useApp((st) => st.settings);
  const backend = useApp((st) => st.backend);
  const destination = useApp((st) => st.destination);
  const caps = useApp((st) => st.caps);
  const running = useApp((st) => st.status === 'running');
  const isDefault = JSON.stringify(s) === JSON.stringify(DEFAULT_SETTINGS);
  // Once the model is known, every block size it accepts (down to 2), not a fixed list.
  const known = useApp((st) => st.preflight.info?.blockSizes);
  const blockSizes = known && known.length ? (known.includes(s.blockSize) ? known : [...known, s.blockSize].sort((a, b) => a - b)) : [...BLOCK_SIZES];
  return (
    <section className="panel" aria-labelledby="settings-h">
      <h2 id="settings-h">Settings {isDefault && <small className="muted">(defaults — same as the CLI)</small>}</h2>
      <LinkProblems />
      <fieldset disabled={running} style={{ border: 0, padding: 0, margin: 0 }}>
        <div className="settings">
          <label className="field">
            <span>Bits</span>
            <select value={s.bits} onChange={(e) => setSetting('bits', Number(e.target.value) as Bits)}>
              <option value={4}>4-bit</option>
              <option value={8}>8-bit</option>
              <option value={16}>16 (rotate only)</option>
            </select>
          </label>
          <label className="field">
            <span>Scheme</span>
            <select value={s.scheme} onChange={(e) => setSetting('scheme', e.target.value as Scheme)}>
              <option value="sp">sp (scale per row)</option>
              <option value="per_tensor">per_tensor</option>
            </select>
          </label>
          <label className="field">
            <span>Clip</span>
            <select value={s.clip} onChange={(e) => setSetting('clip', e.target.value as Clip)}>
              <option value="mse">mse (searched)</option>
              <option value="absmax">absmax</option>
            </select>
          </label>
          <label className="field">
            <span>Rotation</span>
            <select value={s.rotation} onChange={(e) => setSetting('rotation', e.target.value as RotationMode)}>
              <option value="full">full Hadamard</option>
              <option value="block">block Hadamard</option>
              <option value="none">none (plain RTN)</option>
            </select>
          </label>
          <label className="field">
            <span>Block size</span>
            <select value={s.blockSize} disabled={s.rotation !== 'block'} onChange={(e) => setSetting('blockSize', Number(e.target.value))}>
              {blockSizes.map((b) => <option key={b} value={b} disabled={!!known?.length && !known.includes(b)}>{b}{known?.length && !known.includes(b) ? ' (does not divide d)' : ''}</option>)}
            </select>
          </label>
          <label className="field">
            <span>Seed</span>
            <input type="number" min={0} max={4294967295} step={1} value={s.seed}
              onChange={(e) => { const v = Number(e.target.value); if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) setSetting('seed', v); }} />
          </label>
          <label className="field">
            <span>Stored dtype</span>
            <select value={s.dtype} onChange={(e) => setSetting('dtype', e.target.value as OutputDtype)}>
              <option value="f16">float16</option>
              <option value="f32">float32</option>
            </select>
          </label>
          <label className="check">
            <input type="checkbox" checked={s.quantizeEmbeddings} onChange={(e) => setSetting('quantizeEmbeddings', e.target.checked)} />
            Quantize embeddings
          </label>
        </div>
        <MethodSettings />
        <PrecisionSettings />
        <h3>Where it runs and where it goes</h3>
        <div className="settings">
          <label className="field">
            <span>Backend</span>
            <select value={backend} onChange={(e) => setBackend(e.target.value as BackendChoice)}>
              <option value="auto">auto (the faster, as measured)</option>
              <option value="webgpu">WebGPU</option>
              <option value="cpu">CPU</option>
            </select>
          </label>
          <label className="field wide">
            <span>Destination</span>
            <select value={destination} onChange={(e) => setDestination(e.target.value as Destination)}>
              <option value="zip">.zip download (built in memory)</option>
              <option value="folder" disabled={!caps?.fileSystemAccess}>write into a folder{caps && !caps.fileSystemAccess ? ' (not in this browser)' : ''}</option>
              <option value="opfs" disabled={caps ? !caps.opfs : false}>browser storage (OPFS){caps && !caps.opfs ? ` (${caps.opfsUnavailable ?? 'not in this browser'})` : ''}</option>
            </select>
          </label>
          {caps && !caps.fileSystemAccess && !caps.opfs && (
            <p className="muted" data-testid="destination-note" style={{ gridColumn: '1 / -1', margin: 0 }}>
              This browser can neither write into a folder nor keep the bundle in browser storage ({caps.opfsUnavailable ?? 'not available'}); it is made in memory and saved as a .zip download.
            </p>
          )}
        </div>
      </fieldset>
    </section>
  );
}
