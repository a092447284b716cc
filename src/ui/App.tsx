import { useApp } from '../state/store';
import { dropFiles } from '../state/actions';
import { Capabilities } from './Capabilities';
import { ModelPicker } from './ModelPicker';
import { SettingsPanel } from './SettingsPanel';
import { PreflightPanel } from './PreflightPanel';
import { RunBar } from './RunBar';
import { ProgressPanel } from './ProgressPanel';
import { InspectPanel } from './InspectPanel';
import { NextStepsPanel, ResultPanel } from './ResultPanel';
import { QualityPanel } from './QualityPanel';
import { AdvisorPanel } from './AdvisorPanel';

export function App() {
  const status = useApp((s) => s.status);
  const hasReports = useApp((s) => s.reports.length > 0);
  const ready = useApp((s) => s.ready);
  return (
    <main
      data-status={status}
      data-ready={ready ? 'true' : 'false'}
      // Files dropped anywhere on the page count (the drop zone is just the visible target).
      onDragOver={(e) => { if (status !== 'running' && e.dataTransfer.types.includes('Files')) e.preventDefault(); }}
      onDrop={(e) => { if (status === 'running') return; e.preventDefault(); void dropFiles(e.dataTransfer); }}
    >
      <header className="top">
        <h1>QuaRot Studio</h1>
        <p>Rotate and quantize a Qwen2.5 model into an ANEMLL bundle — in this tab.</p>
        <Capabilities />
      </header>
      <div className="grid">
        <div>
          <ModelPicker />
          <SettingsPanel />
        </div>
        <div>
          {/* Run controls first: they must not move while the panels below fill in. */}
          <RunBar />
          <PreflightPanel />
          <ProgressPanel />
          <ResultPanel />
          <NextStepsPanel />
        </div>
      </div>
      {hasReports && <InspectPanel />}
      {/* Always there: besides this run's bundle it can check a dropped bundle against its original. */}
      <QualityPanel />
      <AdvisorPanel />
    </main>
  );
}
