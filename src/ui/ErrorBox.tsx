import type { WorkerError } from '../worker/protocol';

export function ErrorBox({ error, title }: { error: WorkerError; title: string }) {
  return (
    <div className="error" role="alert" data-testid="error">
      <b>{title}</b>
      <div>{error.message}</div>
      {(error.file || error.tensor) && (
        <div className="muted">
          {error.file && <>file <code>{error.file}</code> </>}
          {error.tensor && <>tensor <code>{error.tensor}</code></>}
        </div>
      )}
    </div>
  );
}
