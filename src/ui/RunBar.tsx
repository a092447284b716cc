import { cancel, copyLink, run, settingsBlocked, shareQuery } from '../state/actions';
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../state/store';
import { useAdvisor } from '../state/advisor';

export function RunBar() {
  const status = useApp((s) => s.status);
  const copied = useApp((s) => s.linkCopied);
  const hasModel = useApp((s) => (s.modelKind === 'demo' ? !!s.demoName : s.modelKind === 'hub' ? !!s.repo.trim() : !!s.files));
  // Subscribing to the pieces the link is made of keeps the shown link current.
  useApp(useShallow((s) => [s.settings, s.repo, s.revision, s.demoName, s.modelKind, s.hubUrl]));
  const ready = useApp((s) => s.ready);
  const pf = useApp((s) => s.preflight);
  useApp(useShallow((s) => [s.linkProblems, s.overrideDraftError]));
  const settingsProblem = settingsBlocked();
  const running = status === 'running';
  // The advisor's sweep and a run share the one worker: one at a time.
  const advising = useAdvisor((a) => a.status === 'running');
  // Why Run is off, said next to it (the preflight panel has the details and the fixes).
  const blocked = !hasModel
    ? 'Choose a model first.'
    : advising
      ? 'The settings advisor is running: wait for it or cancel it (Advisor panel).'
    : settingsProblem
      ? settingsProblem
    : pf.state === 'error'
      ? 'The model cannot be processed (see “Before running”).'
      : pf.state === 'ok' && pf.info?.overrideError && pf.info.blocking === pf.info.overrideError
        ? 'A bits-override pattern matches no tensor of this model: fix it under Settings → Precision.'
      : pf.state === 'ok' && pf.info?.blocking
        ? 'These settings cannot run on this model — apply a suggestion under “Before running”.'
        : null;
  return (
    <section className="panel runbar" aria-label="Run">
      <button className="primary" onClick={() => void run()} disabled={running || !ready || blocked !== null} aria-describedby={blocked ? 'run-blocked' : undefined}>Run</button>
      <button className="secondary" onClick={() => void cancel()} disabled={!running}>Cancel</button>
      <button className="secondary" onClick={() => void copyLink()}>Copy link</button>
      {copied && <span role="status" className="muted">{copied === 'copied' ? 'Copied.' : 'Could not copy — select the link below.'}</span>}
      {blocked && !running && <span id="run-blocked" className="error-inline" data-testid="run-blocked">{blocked}</span>}
      <input className="link" readOnly value={shareQuery()} title="This page's shareable link (no token in it)" aria-label="Shareable link" onFocus={(e) => e.target.select()} />
    </section>
  );
}
