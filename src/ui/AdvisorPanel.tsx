/**
 * "Which settings?" — the settings advisor: tries a small grid (method × codebook × W8 budget) on
 * the chosen model with the chosen calibration, in this tab and in memory, and shows each
 * point's perplexity, its change against the original, the bundle size and the time as they
 * come in; "Apply" puts a row's settings into the settings above. The work is in the worker
 * (src/worker/advise.ts → src/eval/sweep.ts).
 */
import { BUILTIN_TEXT_LABEL } from '../eval/builtin-text';
import { w8Percent } from '../eval/sweep-grid';
import {
  ADVISOR_CODEBOOKS, ADVISOR_METHODS, ADVISOR_SEQLEN, ADVISOR_W8, ADVISOR_WINDOWS, advisorPointCount, applyRow, cancelAdvice, startAdvice,
  toggleCodebook, toggleMethod, toggleW8, useAdvisor,
} from '../state/advisor';
import { useApp } from '../state/store';
import { ErrorBox } from './ErrorBox';

export function AdvisorPanel() {
  const st = useAdvisor();
  const settings = useApp((s) => s.settings);
  const ready = useApp((s) => s.ready);
  const pipelineRunning = useApp((s) => s.status === 'running');
  const running = st.status === 'running';
  const points = advisorPointCount(st);
  const best = st.result?.best ?? null;
  return (
    <section className="panel" aria-labelledby="advisor-h" data-testid="advisor" data-advisor-status={st.status}>
      <h2 id="advisor-h">Which settings? The advisor</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        Quantizes this model at each ticked combination (with the other settings as they are, and the calibration chosen under Method),
        keeps nothing, and scores each bundle: perplexity on the first {ADVISOR_WINDOWS} windows × {ADVISOR_SEQLEN} tokens of the {BUILTIN_TEXT_LABEL},
        the change against the original model, the bundle size and the time to make it. Lower perplexity is better.
      </p>
      <fieldset disabled={running} style={{ border: 0, padding: 0, margin: 0 }}>
        <div className="row" role="group" aria-label="Methods to try">
          {ADVISOR_METHODS.map((m) => (
            <label className="check" key={m}><input type="checkbox" checked={st.methods.includes(m)} onChange={() => toggleMethod(m)} aria-label={`try ${m.toUpperCase()}`} /> {m === 'rtn' ? 'RTN' : 'GPTQ'}</label>
          ))}
          {ADVISOR_CODEBOOKS.map((c) => (
            <label className="check" key={c}><input type="checkbox" checked={st.codebooks.includes(c)} onChange={() => toggleCodebook(c)} aria-label={`try the ${c} codebook`} /> {c} codebook</label>
          ))}
          {ADVISOR_W8.map((p) => (
            <label className="check" key={p}><input type="checkbox" checked={st.w8.includes(p)} onChange={() => toggleW8(p)} aria-label={`try W8 ${p} %`} /> W8 {p} %</label>
          ))}
        </div>
      </fieldset>
      <div className="runbar">
        {!running ? (
          <button className="secondary" onClick={() => void startAdvice()} disabled={!ready || pipelineRunning || points === 0}>
            Try {points} setting{points === 1 ? '' : 's'}
          </button>
        ) : (
          <button className="secondary" onClick={() => void cancelAdvice()}>Cancel advice</button>
        )}
        {running && (
          <span className="muted" data-testid="advisor-progress">
            {st.rows.length}/{st.total} done{st.progress ? ` — ${st.progress.message}` : ''}
          </span>
        )}
        <span className="muted" data-testid="advisor-current">
          Current settings: {settings.method.toUpperCase()}, {settings.codebook} codebook, W8 {w8Percent(settings.w8Budget)} %
        </span>
      </div>
      {st.notices.map((n, i) => <p className="muted" key={i}>{n}</p>)}
      {st.error && <ErrorBox error={st.error} title="The advisor stopped" />}
      {(st.rows.length > 0 || st.result) && (
        <table className="cmp" data-testid="advisor-table">
          <thead>
            <tr><th>#</th><th>method</th><th>codebook</th><th>W8 %</th><th>perplexity</th><th>Δ vs original</th><th>size</th><th>time</th><th></th></tr>
          </thead>
          <tbody>
            {st.rows.map((r) => (
              <tr key={r.index} data-testid="advisor-row" data-best={r.index === best ? 'true' : 'false'} data-applied={st.applied === r.index ? 'true' : 'false'}>
                <td>{r.index === best ? '★ ' : ''}{r.index + 1}</td>
                <td data-col="method">{r.point.method}</td>
                <td data-col="codebook">{r.point.codebook}</td>
                <td data-col="w8">{w8Percent(r.point.w8Budget)}</td>
                <td data-col="ppl">{r.ppl.toFixed(4)}</td>
                <td data-col="dppl">{r.deltaPpl >= 0 ? '+' : ''}{r.deltaPpl.toFixed(4)}</td>
                <td data-col="size" data-bytes={r.bytes}>{(r.bytes / 1e6).toFixed(3)} MB</td>
                <td data-col="time">{(r.aloneMs / 1000).toFixed(1)} s</td>
                <td><button className="secondary" onClick={() => applyRow(r.index)} disabled={running} aria-label={`apply row ${r.index + 1}`}>Apply</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {st.result && (
        <p className="muted" data-testid="advisor-summary">
          Original model: perplexity {st.result.pplOriginal.toFixed(4)} on {st.result.windows} windows × {st.result.seqlen} tokens ({st.result.predictions} predictions).
          ★ = lowest perplexity. Times are each bundle made alone{st.result.sensitivityMs > 0 ? `; the W8 rows include the sensitivity pass (${(st.result.sensitivityMs / 1000).toFixed(1)} s), run once here` : ''}.
          All {st.result.points.length} in {(st.result.elapsedMs / 1000).toFixed(1)} s.
        </p>
      )}
    </section>
  );
}
