import { cancel, copyLink, run, shareQuery } from '../state/actions';
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../state/store';

export function RunBar() {
  const status = useApp((s) => s.status);
  const copied = useApp((s) => s.linkCopied);
  const hasModel = useApp((s) => (s.modelKind === 'demo' ? !!s.demoName : s.modelKind === 'hub' ? !!s.repo.trim() : !!s.files));
  // Subscribing to the pieces the link is made of keeps the shown link current.
  useApp(useShallow((s) => [s.settings, s.repo, s.revision, s.demoName, s.modelKind, s.hubUrl]));
  const ready = useApp((s) => s.ready);
  const running = status === 'running';
  return (
    <section className="panel runbar" aria-label="Run">
      <button className="primary" onClick={() => void run()} disabled={running || !hasModel || !ready}>Run</button>
      <button className="secondary" onClick={() => void cancel()} disabled={!running}>Cancel</button>
      <button className="secondary" onClick={() => void copyLink()}>Copy link</button>
      {copied && <span role="status" className="muted">{copied === 'copied' ? 'Copied.' : 'Could not copy — select the link below.'}</span>}
      <code title="This page's shareable link (no token in it)">{shareQuery()}</code>
    </section>
  );
}
