/**
 * Round half to even — the rounding WGSL's round() and torch.round() use. Math.round rounds
 * halves up, which would make the CPU and GPU backends disagree on exact ties.
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
