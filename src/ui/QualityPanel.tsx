/**
 * Slot for "Check quality" (SPEC §7): perplexity and a short generation of the original and the
 * quantized model. The evaluation itself (src/eval/check.ts, runQualityCheck) is built
 * separately; this panel is where its controls and results go.
 */
export function QualityPanel() {
  return (
    <section className="panel" aria-labelledby="quality-h" data-testid="quality-slot">
      <h2 id="quality-h">Check quality</h2>
      <p className="muted" style={{ margin: 0 }}>
        Perplexity and a short greedy generation, original vs quantized, computed in this tab — coming with the quality-check module.
      </p>
    </section>
  );
}
