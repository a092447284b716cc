import { useEffect, useRef } from 'react';

/**
 * A canvas sized to its CSS width × `height` at the device pixel ratio, redrawn when `deps`
 * change or the element resizes. `draw` gets a context in CSS pixels.
 */
export function useCanvas(draw: (ctx: CanvasRenderingContext2D, width: number, height: number) => void, deps: unknown[], height: number) {
  const ref = useRef<HTMLCanvasElement>(null);
  const drawRef = useRef(draw);
  drawRef.current = draw;
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas) return;
    const paint = () => {
      const dpr = window.devicePixelRatio || 1;
      const width = canvas.clientWidth || 600;
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.height = `${height}px`;
      const ctx = canvas.getContext('2d');
      if (!ctx) return;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      drawRef.current(ctx, width, height);
    };
    paint();
    const ro = new ResizeObserver(paint);
    ro.observe(canvas);
    return () => ro.disconnect();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [height, ...deps]);
  return ref;
}

export const COLORS = { before: '#8a94a3', after: '#2f6fde', quant: '#e0772d', grid: '#e4e8ee', text: '#5d6875', bad: '#c0392b' };
