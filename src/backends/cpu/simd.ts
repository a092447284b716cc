/**
 * WebAssembly SIMD versions of the CPU backend's hot kernels, emitted at runtime by
 * ./wasm-asm.ts. Every kernel performs, per element, the same IEEE f32 operations in the same
 * order as the plain TypeScript kernels (./kernels.ts, src/core/hadamard/rotation.ts) — the
 * documented order of src/core/ports.ts — so results are bit-identical (test/cpu-simd.test.ts;
 * only NaN payloads are unspecified). WASM f32x4 arithmetic is IEEE (no fused multiply-add,
 * denormals kept); `f32x4.nearest` is round-half-even.
 *
 * Vectorisation keeps each sequential sum sequential: the MSE search puts 4 candidates in the 4
 * lanes (each lane sums its own candidate's errors over the row in column order), the row error
 * sums put 4 rows in the lanes, the rotations work on "laned" vectors (element i of lane l at
 * i·W + l, W rows or columns side by side) so every butterfly and K-stage add is a lane-wise op.
 *
 * Memory: one WebAssembly.Memory, bounded — matrices go through it in chunks of about
 * CHUNK_FLOATS floats (rows, or a block of columns), copied in and out.
 */
import type { RotationSpec } from '../../core/ports';
import { assembleModule, Fn } from './wasm-asm';

const CHUNK_FLOATS = 1 << 20;
/** Rows side by side in a row rotation's laned block. */
const ROW_LANES = 8;
/** Columns side by side in a column rotation's block (as the TS reference). */
const COLUMN_BLOCK = 64;
/** Candidate groups (4 candidates each) one MSE pass over a row evaluates. */
const MSE_GROUPS = 3;

// ── kernels ──────────────────────────────────────────────────────────────────────────────────

/** mse_G(data, rows, cols, base, invBase, cand, invCand, qmin, qmax, out, outStride): G·4 candidates per pass. */
function mseKernel(groups: number): Fn {
  const f = new Fn(`mse${groups}`, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'f32', 'i32', 'i32']);
  const [data, rows, cols, base, invBase, cand, invCand, qmin, qmax, out, outStride] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const r = f.local('i32'), p = f.local('i32'), end = f.local('i32');
  const qminV = f.local('v128'), qmaxV = f.local('v128'), bR = f.local('v128'), ibR = f.local('v128'), w = f.local('v128'), q = f.local('v128');
  const step: number[] = [], inv: number[] = [], acc: number[] = [];
  for (let g = 0; g < groups; g++) { step.push(f.local('v128')); inv.push(f.local('v128')); acc.push(f.local('v128')); }
  f.get(qmin).op('f32x4.splat').set(qminV).get(qmax).op('f32x4.splat').set(qmaxV);
  f.for(r, () => f.i32(0), rows, 1, () => {
    f.get(base).get(r).i32(2).op('i32.shl', 'i32.add').mem('f32.load').op('f32x4.splat').set(bR);
    f.get(invBase).get(r).i32(2).op('i32.shl', 'i32.add').mem('f32.load').op('f32x4.splat').set(ibR);
    for (let g = 0; g < groups; g++) {
      f.get(bR).get(cand).mem('v128.load', 16 * g).op('f32x4.mul').set(step[g]);
      f.get(ibR).get(invCand).mem('v128.load', 16 * g).op('f32x4.mul').set(inv[g]);
      f.v128i(0, 0, 0, 0).set(acc[g]);
    }
    f.get(data).get(r).get(cols).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(p);
    f.get(p).get(cols).i32(2).op('i32.shl', 'i32.add').set(end);
    f.while(() => f.get(p).get(end).op('i32.lt_u'), () => {
      f.get(p).mem('v128.load32_splat').set(w);
      for (let g = 0; g < groups; g++) {
        // q = clamp(nearest(w·inv)); e = w − step·q; acc += e·e
        f.get(w).get(inv[g]).op('f32x4.mul', 'f32x4.nearest').get(qminV).op('f32x4.max').get(qmaxV).op('f32x4.min').set(q);
        f.get(w).get(step[g]).get(q).op('f32x4.mul', 'f32x4.sub').tee(q).get(q).op('f32x4.mul');
        f.get(acc[g]).op('f32x4.add').set(acc[g]);
      }
      f.get(p).i32(4).op('i32.add').set(p);
    });
    for (let g = 0; g < groups; g++) {
      f.get(out).get(r).get(outStride).op('i32.mul', 'i32.add').get(acc[g]).mem('v128.store', 16 * g);
    }
  });
  return f;
}

/** fwht(base, m, W): in-place FWHT over m laned rows of W floats (W % 4 == 0), radix-4 then radix-2. */
function fwhtKernel(): Fn {
  const f = new Fn('fwht', ['i32', 'i32', 'i32']);
  const [base, m, W] = [0, 1, 2];
  const h = f.local('i32'), hw = f.local('i32'), group = f.local('i32'), end = f.local('i32'), g = f.local('i32'), j = f.local('i32'), stop = f.local('i32');
  const x0 = f.local('v128'), x1 = f.local('v128'), x2 = f.local('v128'), x3 = f.local('v128'), a = f.local('v128'), b = f.local('v128'), c = f.local('v128'), d = f.local('v128');
  f.i32(1).set(h);
  f.get(base).get(m).get(W).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(end);
  f.while(() => f.get(h).i32(2).op('i32.shl').get(m).op('i32.le_u'), () => {
    f.get(h).get(W).op('i32.mul').i32(2).op('i32.shl').set(hw); // bytes
    f.get(hw).i32(2).op('i32.shl').set(group);
    f.for(g, () => f.get(base), end, 0, () => {
      f.get(g).get(hw).op('i32.add').set(stop);
      f.for(j, () => f.get(g), stop, 16, () => {
        f.get(j).mem('v128.load').set(x0);
        f.get(j).get(hw).op('i32.add').mem('v128.load').set(x1);
        f.get(j).get(hw).i32(1).op('i32.shl', 'i32.add').mem('v128.load').set(x2);
        f.get(j).get(hw).i32(3).op('i32.mul', 'i32.add').mem('v128.load').set(x3);
        f.get(x0).get(x1).op('f32x4.add').set(a).get(x0).get(x1).op('f32x4.sub').set(b);
        f.get(x2).get(x3).op('f32x4.add').set(c).get(x2).get(x3).op('f32x4.sub').set(d);
        f.get(j).get(a).get(c).op('f32x4.add').mem('v128.store');
        f.get(j).get(hw).op('i32.add').get(b).get(d).op('f32x4.add').mem('v128.store');
        f.get(j).get(hw).i32(1).op('i32.shl', 'i32.add').get(a).get(c).op('f32x4.sub').mem('v128.store');
        f.get(j).get(hw).i32(3).op('i32.mul', 'i32.add').get(b).get(d).op('f32x4.sub').mem('v128.store');
      });
      f.get(g).get(group).op('i32.add').set(g); // (the for's own step is 0)
    });
    f.get(h).i32(2).op('i32.shl').set(h);
  });
  f.get(h).get(m).op('i32.lt_u').if(() => {
    f.get(h).get(W).op('i32.mul').i32(2).op('i32.shl').set(hw);
    f.get(base).get(hw).op('i32.add').set(stop);
    f.for(j, () => f.get(base), stop, 16, () => {
      f.get(j).mem('v128.load').set(x0);
      f.get(j).get(hw).op('i32.add').mem('v128.load').set(x1);
      f.get(j).get(x0).get(x1).op('f32x4.add').mem('v128.store');
      f.get(j).get(hw).op('i32.add').get(x0).get(x1).op('f32x4.sub').mem('v128.store');
    });
  });
  return f;
}

/**
 * kstage(base, k, hKf, runBytes, tmp): out(a, r) = Σ_{a'} hK[a'·K + a]·in(a', r) summed from the
 * a' = 0 term; hKf is H_K as f32 (±1). 4 vectors at a time while they fit, then 1.
 */
function kStageKernel(): Fn {
  const f = new Fn('kstage', ['i32', 'i32', 'i32', 'i32', 'i32']);
  const [base, k, hKf, runB, tmp] = [0, 1, 2, 3, 4];
  const a = f.local('i32'), o = f.local('i32'), r = f.local('i32'), t = f.local('i32'), ap = f.local('i32'), hp = f.local('i32'), r4 = f.local('i32');
  const h0 = f.local('v128'), h = f.local('v128');
  const c = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  f.get(tmp).get(base).get(k).get(runB).op('i32.mul', 'memory.copy');
  // r4 = runB rounded down to 64 bytes
  f.get(runB).i32(-64).op('i32.and').set(r4);
  const body = (u: number): void => {
    f.get(hKf).get(a).i32(2).op('i32.shl', 'i32.add').mem('v128.load32_splat').set(h0);
    for (let i = 0; i < u; i++) f.get(h0).get(tmp).get(r).op('i32.add').mem('v128.load', 16 * i).op('f32x4.mul').set(c[i]);
    f.get(tmp).get(r).op('i32.add').get(runB).op('i32.add').set(t);
    // hp = &hKf[1·K + a]
    f.get(hKf).get(k).get(a).op('i32.add').i32(2).op('i32.shl', 'i32.add').set(hp);
    f.for(ap, () => f.i32(1), k, 1, () => {
      f.get(hp).mem('v128.load32_splat').set(h);
      for (let i = 0; i < u; i++) f.get(c[i]).get(h).get(t).mem('v128.load', 16 * i).op('f32x4.mul', 'f32x4.add').set(c[i]);
      f.get(t).get(runB).op('i32.add').set(t);
      f.get(hp).get(k).i32(2).op('i32.shl', 'i32.add').set(hp);
    });
    for (let i = 0; i < u; i++) f.get(o).get(r).op('i32.add').get(c[i]).mem('v128.store', 16 * i);
  };
  f.for(a, () => f.i32(0), k, 1, () => {
    f.get(base).get(a).get(runB).op('i32.mul', 'i32.add').set(o);
    f.for(r, () => f.i32(0), r4, 64, () => body(4));
    f.for(r, () => f.get(r4), runB, 16, () => body(1));
  });
  return f;
}

/** mix(buf, length, segment, m, k, hKf, W, tmp): the FWHTs and K-stage of every segment (laned, W lanes). */
function mixKernel(fwhtIndex: number, kstageIndex: number): Fn {
  const f = new Fn('mix', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [buf, length, segment, m, k, hKf, W, tmp] = [0, 1, 2, 3, 4, 5, 6, 7];
  const s = f.local('i32'), sb = f.local('i32'), a = f.local('i32'), block = f.local('i32');
  f.get(m).get(W).op('i32.mul').i32(2).op('i32.shl').set(block); // bytes of one FWHT block
  f.for(s, () => f.i32(0), length, 0, () => {
    f.get(buf).get(s).get(W).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(sb);
    f.for(a, () => f.i32(0), k, 1, () => {
      f.get(sb).get(a).get(block).op('i32.mul', 'i32.add').get(m).get(W).call(fwhtIndex);
    });
    f.get(k).i32(1).op('i32.gt_u').if(() => {
      f.get(sb).get(k).get(hKf).get(block).get(tmp).call(kstageIndex);
    });
    f.get(s).get(segment).op('i32.add').set(s);
  });
  return f;
}

/** transposeIn(src, nRows, cols, signs, blk, W): blk[i·W + l] = src[l·cols + i]·signs[i] (lanes ≥ nRows: 0). */
function transposeInKernel(): Fn {
  const f = new Fn('transposeIn', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [src, nRows, cols, signs, blk, W] = [0, 1, 2, 3, 4, 5];
  const l = f.local('i32'), i = f.local('i32'), p = f.local('i32'), q = f.local('i32'), wb = f.local('i32');
  f.get(W).i32(2).op('i32.shl').set(wb);
  f.for(l, () => f.i32(0), W, 1, () => {
    f.get(blk).get(l).i32(2).op('i32.shl', 'i32.add').set(q);
    f.get(src).get(l).get(cols).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(p);
    f.get(l).get(nRows).op('i32.lt_u').if(() => {
      f.for(i, () => f.i32(0), cols, 1, () => {
        f.get(q).get(p).mem('f32.load').get(signs).get(i).i32(2).op('i32.shl', 'i32.add').mem('f32.load').op('f32.mul').mem('f32.store');
        f.get(p).i32(4).op('i32.add').set(p);
        f.get(q).get(wb).op('i32.add').set(q);
      });
    }, () => {
      f.for(i, () => f.i32(0), cols, 1, () => {
        f.get(q).f32(0).mem('f32.store');
        f.get(q).get(wb).op('i32.add').set(q);
      });
    });
  });
  return f;
}

/** transposeOut(blk, dst, nRows, cols, scale, W): dst[l·cols + i] = blk[i·W + l]·scale. */
function transposeOutKernel(): Fn {
  const f = new Fn('transposeOut', ['i32', 'i32', 'i32', 'i32', 'f32', 'i32']);
  const [blk, dst, nRows, cols, scale, W] = [0, 1, 2, 3, 4, 5];
  const l = f.local('i32'), i = f.local('i32'), p = f.local('i32'), q = f.local('i32'), wb = f.local('i32');
  f.get(W).i32(2).op('i32.shl').set(wb);
  f.for(l, () => f.i32(0), nRows, 1, () => {
    f.get(blk).get(l).i32(2).op('i32.shl', 'i32.add').set(q);
    f.get(dst).get(l).get(cols).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(p);
    f.for(i, () => f.i32(0), cols, 1, () => {
      f.get(p).get(q).mem('f32.load').get(scale).op('f32.mul').mem('f32.store');
      f.get(p).i32(4).op('i32.add').set(p);
      f.get(q).get(wb).op('i32.add').set(q);
    });
  });
  return f;
}

/** signLaned(blk, n, W, signs): blk[i·W + l] *= signs[i] (W % 4 == 0). */
function signLanedKernel(): Fn {
  const f = new Fn('signLaned', ['i32', 'i32', 'i32', 'i32']);
  const [blk, n, W, signs] = [0, 1, 2, 3];
  const i = f.local('i32'), p = f.local('i32'), end = f.local('i32'), s = f.local('v128');
  f.get(blk).set(p);
  f.for(i, () => f.i32(0), n, 1, () => {
    f.get(signs).get(i).i32(2).op('i32.shl', 'i32.add').mem('v128.load32_splat').set(s);
    f.get(p).get(W).i32(2).op('i32.shl', 'i32.add').set(end);
    f.while(() => f.get(p).get(end).op('i32.lt_u'), () => {
      f.get(p).get(p).mem('v128.load').get(s).op('f32x4.mul').mem('v128.store');
      f.get(p).i32(16).op('i32.add').set(p);
    });
  });
  return f;
}

/** scaleAll(p, nBytes, scale): p[i] *= scale, nBytes % 16 == 0. */
function scaleAllKernel(): Fn {
  const f = new Fn('scaleAll', ['i32', 'i32', 'f32']);
  const [p0, nB, scale] = [0, 1, 2];
  const p = f.local('i32'), end = f.local('i32'), s = f.local('v128');
  f.get(scale).op('f32x4.splat').set(s);
  f.get(p0).get(nB).op('i32.add').set(end);
  f.for(p, () => f.get(p0), end, 16, () => {
    f.get(p).get(p).mem('v128.load').get(s).op('f32x4.mul').mem('v128.store');
  });
  return f;
}

/** scaleCols(data, rows, cols, gamma): data[r][c] = data[r][c]·gamma[c], cols % 4 == 0. */
function scaleColsKernel(): Fn {
  const f = new Fn('scaleCols', ['i32', 'i32', 'i32', 'i32']);
  const [data, rows, cols, gamma] = [0, 1, 2, 3];
  const r = f.local('i32'), p = f.local('i32'), c = f.local('i32'), cb = f.local('i32');
  f.get(cols).i32(2).op('i32.shl').set(cb);
  f.get(data).set(p);
  f.for(r, () => f.i32(0), rows, 1, () => {
    f.for(c, () => f.i32(0), cb, 16, () => {
      f.get(p).get(c).op('i32.add').get(p).get(c).op('i32.add').mem('v128.load').get(gamma).get(c).op('i32.add').mem('v128.load').op('f32x4.mul').mem('v128.store');
    });
    f.get(p).get(cb).op('i32.add').set(p);
  });
  return f;
}

/** absmax(data, rows, cols, out): out[r] = max_c |x| ("if a > m: m = a" from m = 0; NaN never wins), cols % 4 == 0. */
function absMaxKernel(): Fn {
  const f = new Fn('absmax', ['i32', 'i32', 'i32', 'i32']);
  const [data, rows, cols, out] = [0, 1, 2, 3];
  const r = f.local('i32'), p = f.local('i32'), end = f.local('i32'), m = f.local('v128'), s = f.local('f32');
  f.get(data).set(p);
  f.for(r, () => f.i32(0), rows, 1, () => {
    f.v128i(0, 0, 0, 0).set(m);
    f.get(p).get(cols).i32(2).op('i32.shl', 'i32.add').set(end);
    f.while(() => f.get(p).get(end).op('i32.lt_u'), () => {
      // pmax(m, a) = m < a ? a : m
      f.get(m).get(p).mem('v128.load').op('f32x4.abs', 'f32x4.pmax').set(m);
      f.get(p).i32(16).op('i32.add').set(p);
    });
    f.get(m).extractF(0).get(m).extractF(1).op('f32.max').get(m).extractF(2).op('f32.max').get(m).extractF(3).op('f32.max').set(s);
    f.get(out).get(r).i32(2).op('i32.shl', 'i32.add').get(s).mem('f32.store');
  });
  return f;
}

const splatI = (f: Fn, x: number): Fn => f.v128i(x | 0, x | 0, x | 0, x | 0);

/**
 * res = f16 round-to-nearest-even of the f32 lanes of v (as f32), the integer recipe of
 * roundF32ToF16Value: inf/NaN unchanged, ≥ 65520 → ±inf, below 2^-14 nearest(|v|·2^24)·2^-24,
 * else keep 10 mantissa bits with RNE on the 13 dropped bits.
 */
function emitRoundF16(f: Fn, v: number, t: { abs: number; sign: number; res: number }): void {
  f.get(v); splatI(f, 0x7fffffff).op('v128.and').set(t.abs);
  f.get(v); splatI(f, 0x80000000).op('v128.and').set(t.sign);
  // subnormal candidate (if true)
  f.get(t.abs); f.v128f(16777216, 16777216, 16777216, 16777216).op('f32x4.mul', 'f32x4.nearest');
  f.v128f(2 ** -24, 2 ** -24, 2 ** -24, 2 ** -24).op('f32x4.mul');
  // normal candidate (if false)
  f.get(t.abs); splatI(f, 0x0fff).op('i32x4.add').get(t.abs).i32(13).op('i32x4.shr_u'); splatI(f, 1).op('v128.and', 'i32x4.add');
  splatI(f, 0xffffe000).op('v128.and');
  f.get(t.abs); splatI(f, 0x38800000).op('i32x4.lt_s', 'v128.bitselect').set(t.res);
  splatI(f, 0x7f800000).get(t.res).get(t.abs); splatI(f, 0x477ff000).op('i32x4.ge_s', 'v128.bitselect');
  f.get(t.sign).op('v128.or').set(t.res);
  f.get(v).get(t.res).get(t.abs); splatI(f, 0x7f800000).op('i32x4.ge_s', 'v128.bitselect').set(t.res);
}

/**
 * One histogram copy per lane (summed by the host), so equal bins in a vector do not wait on
 * each other: `laneBase` = the four copies' byte addresses, set once by emitLaneBase.
 */
function emitLaneBase(f: Fn, counts: number, strideBytes: number, laneBase: number): void {
  f.get(counts).op('i32x4.splat').get(strideBytes).op('i32x4.splat').v128i(0, 1, 2, 3).op('i32x4.mul', 'i32x4.add').set(laneBase);
}

/** Adds 1 to the count of bin idx[lane] in lane's copy, for the four lanes. */
function emitCount(f: Fn, idx: number, laneBase: number, addr: number, a: number): void {
  f.get(idx).i32(2).op('i32x4.shl').get(laneBase).op('i32x4.add').set(addr);
  for (let lane = 0; lane < 4; lane++) {
    f.get(addr).extractI(lane).tee(a).get(a).mem('i32.load').i32(1).op('i32.add').mem('i32.store');
  }
}

/**
 * quantize(data, rows, cols, step, inv, qmin, qmax, f16, out, counts, nanBin): q = clamp(nearest(w·inv));
 * v = step·q (f16-rounded when f16 ≠ 0); counts[q − qmin]++ (NaN: counts[nanBin]). cols % 4 == 0.
 */
function quantizeKernel(): Fn {
  const f = new Fn('quantize', ['i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'f32', 'i32', 'i32', 'i32', 'i32']);
  const [data, rows, cols, step, inv, qmin, qmax, f16, out, counts, nanBin] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const r = f.local('i32'), p = f.local('i32'), o = f.local('i32'), end = f.local('i32'), a = f.local('i32');
  const qminV = f.local('v128'), qmaxV = f.local('v128'), qminI = f.local('v128'), nanV = f.local('v128'), sV = f.local('v128'), iV = f.local('v128');
  const q = f.local('v128'), v = f.local('v128'), idx = f.local('v128');
  const t = { abs: f.local('v128'), sign: f.local('v128'), res: f.local('v128') };
  const stride = f.local('i32'), laneBase = f.local('v128'), addr = f.local('v128');
  f.get(nanBin).i32(1).op('i32.add').i32(2).op('i32.shl').set(stride);
  emitLaneBase(f, counts, stride, laneBase);
  f.get(qmin).op('f32x4.splat').set(qminV).get(qmax).op('f32x4.splat').set(qmaxV);
  f.get(qmin).op('i32.trunc_sat_f32_s', 'i32x4.splat').set(qminI).get(nanBin).op('i32x4.splat').set(nanV);
  f.get(data).set(p).get(out).set(o);
  f.for(r, () => f.i32(0), rows, 1, () => {
    f.get(step).get(r).i32(2).op('i32.shl', 'i32.add').mem('v128.load32_splat').set(sV);
    f.get(inv).get(r).i32(2).op('i32.shl', 'i32.add').mem('v128.load32_splat').set(iV);
    f.get(p).get(cols).i32(2).op('i32.shl', 'i32.add').set(end);
    f.while(() => f.get(p).get(end).op('i32.lt_u'), () => {
      f.get(p).mem('v128.load').get(iV).op('f32x4.mul', 'f32x4.nearest').get(qminV).op('f32x4.max').get(qmaxV).op('f32x4.min').set(q);
      f.get(sV).get(q).op('f32x4.mul').set(v);
      f.get(f16).if(() => { emitRoundF16(f, v, t); f.get(t.res).set(v); });
      f.get(o).get(v).mem('v128.store');
      f.get(nanV).get(q).op('i32x4.trunc_sat_f32x4_s').get(qminI).op('i32x4.sub').get(q).get(q).op('f32x4.ne', 'v128.bitselect').set(idx);
      emitCount(f, idx, laneBase, addr, a);
      f.get(p).i32(16).op('i32.add').set(p).get(o).i32(16).op('i32.add').set(o);
    });
  });
  return f;
}

/** histogram(data, nBytes, range, inv, last, counts): b = floor((x + range)·inv) clamped to [0, last] (NaN → 0); nBytes % 16 == 0. */
function histogramKernel(): Fn {
  const f = new Fn('histogram', ['i32', 'i32', 'f32', 'f32', 'i32', 'i32']);
  const [data, nB, range, inv, last, counts] = [0, 1, 2, 3, 4, 5];
  const p = f.local('i32'), end = f.local('i32'), a = f.local('i32'), stride = f.local('i32');
  const rV = f.local('v128'), iV = f.local('v128'), lastV = f.local('v128'), idx = f.local('v128');
  const laneBase = f.local('v128'), addr = f.local('v128');
  f.get(last).i32(1).op('i32.add').i32(2).op('i32.shl').set(stride);
  emitLaneBase(f, counts, stride, laneBase);
  f.get(range).op('f32x4.splat').set(rV).get(inv).op('f32x4.splat').set(iV).get(last).op('i32x4.splat').set(lastV);
  f.get(data).get(nB).op('i32.add').set(end);
  f.for(p, () => f.get(data), end, 16, () => {
    f.get(p).mem('v128.load').get(rV).op('f32x4.add').get(iV).op('f32x4.mul', 'f32x4.floor', 'i32x4.trunc_sat_f32x4_s');
    f.v128i(0, 0, 0, 0).op('i32x4.max_s').get(lastV).op('i32x4.min_s').set(idx);
    emitCount(f, idx, laneBase, addr, a);
  });
  return f;
}

/** rowSq(a, b, groups, cols, diff, ref): 4 rows per lane group; diff = Σ fround((a−b)²), ref = Σ fround(a²), sequential per row. */
function rowSqKernel(): Fn {
  const f = new Fn('rowSq', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [pa, pb, groups, cols, diff, ref] = [0, 1, 2, 3, 4, 5];
  const g = f.local('i32'), c = f.local('i32'), rb = f.local('i32'), oa = f.local('i32'), ob = f.local('i32');
  const sd = f.local('v128'), sr = f.local('v128'), x = f.local('v128'), e = f.local('v128');
  f.get(cols).i32(2).op('i32.shl').set(rb);
  const gather = (base: number): void => {
    f.get(base).mem('f32.load').op('f32x4.splat');
    for (let l = 1; l < 4; l++) f.get(base).get(rb).i32(l).op('i32.mul', 'i32.add').mem('f32.load').replaceF(l);
  };
  f.for(g, () => f.i32(0), groups, 1, () => {
    f.v128i(0, 0, 0, 0).set(sd).v128i(0, 0, 0, 0).set(sr);
    f.get(pa).get(g).get(rb).op('i32.mul').i32(4).op('i32.mul', 'i32.add').set(oa);
    f.get(pb).get(g).get(rb).op('i32.mul').i32(4).op('i32.mul', 'i32.add').set(ob);
    f.for(c, () => f.i32(0), cols, 1, () => {
      gather(oa); f.set(x);
      f.get(x); gather(ob); f.op('f32x4.sub').tee(e).get(e).op('f32x4.mul').get(sd).op('f32x4.add').set(sd);
      f.get(x).get(x).op('f32x4.mul').get(sr).op('f32x4.add').set(sr);
      f.get(oa).i32(4).op('i32.add').set(oa).get(ob).i32(4).op('i32.add').set(ob);
    });
    f.get(diff).get(g).i32(4).op('i32.shl', 'i32.add').get(sd).mem('v128.store');
    f.get(ref).get(g).i32(4).op('i32.shl', 'i32.add').get(sr).mem('v128.store');
  });
  return f;
}

/** bf16(src, n4, dst): dst[i] = f32 with src[i] as its high half; n4 = elements / 4. */
function bf16Kernel(): Fn {
  const f = new Fn('bf16', ['i32', 'i32', 'i32']);
  const [src, n4, dst] = [0, 1, 2];
  const i = f.local('i32'), p = f.local('i32'), o = f.local('i32');
  f.get(src).set(p).get(dst).set(o);
  f.for(i, () => f.i32(0), n4, 1, () => {
    f.get(o).get(p).mem('v128.load16x4_u').i32(16).op('i32x4.shl').mem('v128.store');
    f.get(p).i32(8).op('i32.add').set(p).get(o).i32(16).op('i32.add').set(o);
  });
  return f;
}

/** f16(src, n8, dst): IEEE binary16 bits (RNE) of 8·n8 f32 values, as encodeF16. */
function f16Kernel(): Fn {
  const f = new Fn('f16', ['i32', 'i32', 'i32']);
  const [src, n8, dst] = [0, 1, 2];
  const i = f.local('i32'), p = f.local('i32'), o = f.local('i32');
  const a = f.local('v128'), h = f.local('v128'), lo = f.local('v128');
  const bits = (off: number): void => {
    f.get(p).mem('v128.load', off); splatI(f, 0x7fffffff).op('v128.and').set(a);
    // normal: (a + 0xfff + ((a >>> 13) & 1) − 0x38000000) >>> 13; subnormal/zero: nearest(|x|·2^24)
    f.get(a); splatI(f, 0x0fff - 0x38000000).op('i32x4.add').get(a).i32(13).op('i32x4.shr_u'); splatI(f, 1).op('v128.and', 'i32x4.add').i32(13).op('i32x4.shr_u');
    f.get(a); f.v128f(16777216, 16777216, 16777216, 16777216).op('f32x4.mul', 'f32x4.nearest', 'i32x4.trunc_sat_f32x4_s');
    f.get(a); splatI(f, 0x38800000).op('i32x4.ge_s', 'v128.bitselect').set(h);
    splatI(f, 0x7c00).get(h).get(a); splatI(f, 0x477ff000).op('i32x4.ge_s', 'v128.bitselect').set(h);
    splatI(f, 0x7e00).get(h).get(a); splatI(f, 0x7f800000).op('i32x4.gt_s', 'v128.bitselect');
    f.get(p).mem('v128.load', off).i32(16).op('i32x4.shr_u'); splatI(f, 0x8000).op('v128.and', 'v128.or');
  };
  f.get(src).set(p).get(dst).set(o);
  f.for(i, () => f.i32(0), n8, 1, () => {
    bits(0); f.set(lo);
    f.get(o).get(lo); bits(16);
    f.shuffle([0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29]).mem('v128.store');
    f.get(p).i32(32).op('i32.add').set(p).get(o).i32(16).op('i32.add').set(o);
  });
  return f;
}

export function buildSimdModule(): Uint8Array<ArrayBuffer> {
  const fns: Fn[] = [];
  const add = (f: Fn): number => fns.push(f) - 1;
  for (let g = 1; g <= MSE_GROUPS; g++) add(mseKernel(g));
  const fw = add(fwhtKernel());
  const ks = add(kStageKernel());
  add(mixKernel(fw, ks));
  add(transposeInKernel());
  add(transposeOutKernel());
  add(signLanedKernel());
  add(scaleAllKernel());
  add(scaleColsKernel());
  add(absMaxKernel());
  add(quantizeKernel());
  add(histogramKernel());
  add(rowSqKernel());
  add(bf16Kernel());
  add(f16Kernel());
  return assembleModule(fns, 1);
}

// ── the host side ────────────────────────────────────────────────────────────────────────────

type Kernel = (...args: number[]) => void;

/** Byte offsets of consecutive 16-byte-aligned regions. */
function layout(sizes: number[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let at = 0;
  for (const s of sizes) {
    offsets.push(at);
    at += Math.ceil(s / 16) * 16;
  }
  return { offsets, total: at };
}

let compiled: WebAssembly.Module | null | undefined;

/** The SIMD module, or null where this engine has no WebAssembly SIMD. */
function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      const bytes = buildSimdModule();
      const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; // typed arrays and WASM memory agree
      compiled = littleEndian && typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export function simdAvailable(): boolean {
  return simdModule() !== null;
}

/**
 * The SIMD kernels bound to one bounded WebAssembly memory. Same signatures and results as the
 * plain kernels; shapes a kernel does not cover (e.g. a row length not a multiple of 4) are the
 * caller's to route to the plain path (see `CpuBackend`).
 */
export class SimdKernels {
  private readonly memory: WebAssembly.Memory;
  private readonly k: Record<string, Kernel>;
  private f32!: Float32Array;
  private u8!: Uint8Array;
  private u32!: Uint32Array;

  private constructor(mod: WebAssembly.Module) {
    this.memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(mod, { env: { memory: this.memory } });
    this.k = inst.exports as unknown as Record<string, Kernel>;
    this.views();
  }

  static create(): SimdKernels | null {
    const mod = simdModule();
    return mod ? new SimdKernels(mod) : null;
  }

  /** Bytes the memory holds now (grows to the largest chunk used, about 3 × CHUNK_FLOATS × 4). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  private views(): void {
    const b = this.memory.buffer;
    this.f32 = new Float32Array(b);
    this.u8 = new Uint8Array(b);
    this.u32 = new Uint32Array(b);
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      this.memory.grow(Math.ceil((bytes - have) / 65536));
      this.views();
    }
  }

  private rowsPerChunk(cols: number, multiple = 1): number {
    const r = Math.max(1, Math.floor(CHUNK_FLOATS / Math.max(1, cols)));
    return Math.max(multiple, r - (r % multiple));
  }

  scaleColumns(data: Float32Array, rows: number, cols: number, gamma: Float32Array): void {
    const per = this.rowsPerChunk(cols);
    const { offsets: [g, d], total } = layout([cols * 4, per * cols * 4]);
    this.ensure(total);
    this.f32.set(gamma.subarray(0, cols), g / 4);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      const view = data.subarray(r0 * cols, (r0 + n) * cols);
      this.f32.set(view, d / 4);
      this.k.scaleCols(d, n, cols, g);
      view.set(this.f32.subarray(d / 4, d / 4 + n * cols));
    }
  }

  rowAbsMax(data: Float32Array, rows: number, cols: number): Float32Array {
    const out = new Float32Array(rows);
    const per = this.rowsPerChunk(cols);
    const { offsets: [d, o], total } = layout([per * cols * 4, per * 4]);
    this.ensure(total);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      this.f32.set(data.subarray(r0 * cols, (r0 + n) * cols), d / 4);
      this.k.absmax(d, n, cols, o);
      out.set(this.f32.subarray(o / 4, o / 4 + n), r0);
    }
    return out;
  }

  mseRowErrors(
    data: Float32Array, rows: number, cols: number, rowBase: Float32Array, rowInvBase: Float32Array,
    alphas: Float32Array, invAlphas: Float32Array, qmin: number, qmax: number,
  ): Float32Array {
    const n = alphas.length;
    const groups = Math.ceil(n / 4);
    const lanes = groups * 4;
    const out = new Float32Array(rows * n);
    const per = this.rowsPerChunk(cols);
    const { offsets: [d, b, ib, c, ic, o], total } = layout([per * cols * 4, per * 4, per * 4, lanes * 4, lanes * 4, per * lanes * 4]);
    this.ensure(total);
    const f32 = this.f32;
    for (let k = 0; k < lanes; k++) {
      f32[c / 4 + k] = k < n ? alphas[k] : 1;
      f32[ic / 4 + k] = k < n ? invAlphas[k] : 1;
    }
    for (let r0 = 0; r0 < rows; r0 += per) {
      const nr = Math.min(per, rows - r0);
      f32.set(data.subarray(r0 * cols, (r0 + nr) * cols), d / 4);
      f32.set(rowBase.subarray(r0, r0 + nr), b / 4);
      f32.set(rowInvBase.subarray(r0, r0 + nr), ib / 4);
      for (let g0 = 0; g0 < groups; g0 += MSE_GROUPS) {
        const gg = Math.min(MSE_GROUPS, groups - g0);
        this.k[`mse${gg}`](d, nr, cols, b, ib, c + 16 * g0, ic + 16 * g0, qmin, qmax, o + 16 * g0, lanes * 4);
      }
      for (let r = 0; r < nr; r++) {
        const src = o / 4 + r * lanes;
        out.set(f32.subarray(src, src + n), (r0 + r) * n);
      }
    }
    return out;
  }

  /** Sizes of H_K (f32), the K-stage's scratch and the signs. */
  private rotationTables(spec: RotationSpec, lanes: number): { sizes: number[] } {
    return { sizes: [spec.k * spec.k * 4, spec.segment * lanes * 4, spec.length * 4] };
  }

  rotateRows(data: Float32Array, rows: number, cols: number, spec: RotationSpec, m: number): void {
    const W = ROW_LANES;
    const per = this.rowsPerChunk(cols, W);
    const t = this.rotationTables(spec, W);
    const { offsets: [hK, tmp, signs, blk, d], total } = layout([...t.sizes, cols * W * 4, per * cols * 4]);
    this.ensure(total);
    const f32 = this.f32;
    for (let i = 0; i < spec.k * spec.k; i++) f32[hK / 4 + i] = spec.hK[i];
    f32.set(spec.signs, signs / 4);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const nr = Math.min(per, rows - r0);
      const view = data.subarray(r0 * cols, (r0 + nr) * cols);
      f32.set(view, d / 4);
      for (let l0 = 0; l0 < nr; l0 += W) {
        const nl = Math.min(W, nr - l0);
        const src = d + l0 * cols * 4;
        this.k.transposeIn(src, nl, cols, signs, blk, W);
        this.k.mix(blk, spec.length, spec.segment, m, spec.k, hK, W, tmp);
        this.k.transposeOut(blk, src, nl, cols, spec.scale, W);
      }
      view.set(f32.subarray(d / 4, d / 4 + nr * cols));
    }
  }

  rotateColumns(data: Float32Array, rows: number, cols: number, spec: RotationSpec, m: number): void {
    const bw = Math.min(COLUMN_BLOCK, Math.ceil(cols / 4) * 4);
    const t = this.rotationTables(spec, bw);
    const { offsets: [hK, tmp, signs, blk], total } = layout([...t.sizes, rows * bw * 4]);
    this.ensure(total);
    const f32 = this.f32;
    for (let i = 0; i < spec.k * spec.k; i++) f32[hK / 4 + i] = spec.hK[i];
    f32.set(spec.signs, signs / 4);
    const b4 = blk / 4;
    for (let c0 = 0; c0 < cols; c0 += COLUMN_BLOCK) {
      const w = Math.min(COLUMN_BLOCK, cols - c0);
      const W = Math.ceil(w / 4) * 4;
      if (W !== w) f32.fill(0, b4, b4 + rows * W);
      for (let i = 0; i < rows; i++) f32.set(data.subarray(i * cols + c0, i * cols + c0 + w), b4 + i * W);
      this.k.signLaned(blk, rows, W, signs);
      this.k.mix(blk, spec.length, spec.segment, m, spec.k, hK, W, tmp);
      this.k.scaleAll(blk, rows * W * 4, spec.scale);
      for (let i = 0; i < rows; i++) data.set(f32.subarray(b4 + i * W, b4 + i * W + w), i * cols + c0);
    }
  }

  /** cols % 4 == 0 only. */
  quantize(
    data: Float32Array, rows: number, cols: number, rowStep: Float32Array, rowInv: Float32Array,
    qmin: number, qmax: number, roundToF16: boolean, values: Float32Array = new Float32Array(rows * cols),
  ): { values: Float32Array; codeCounts: Uint32Array } {
    const bins = qmax - qmin + 1;
    const per = this.rowsPerChunk(cols);
    const { offsets: [d, o, s, iv, cnt], total } = layout([per * cols * 4, per * cols * 4, per * 4, per * 4, 4 * (bins + 1) * 4]);
    this.ensure(total);
    const f32 = this.f32;
    this.u32.fill(0, cnt / 4, cnt / 4 + 4 * (bins + 1));
    for (let r0 = 0; r0 < rows; r0 += per) {
      const nr = Math.min(per, rows - r0);
      f32.set(data.subarray(r0 * cols, (r0 + nr) * cols), d / 4);
      f32.set(rowStep.subarray(r0, r0 + nr), s / 4);
      f32.set(rowInv.subarray(r0, r0 + nr), iv / 4);
      this.k.quantize(d, nr, cols, s, iv, qmin, qmax, roundToF16 ? 1 : 0, o, cnt, bins);
      values.set(f32.subarray(o / 4, o / 4 + nr * cols), r0 * cols);
    }
    const codeCounts = new Uint32Array(bins);
    for (let l = 0; l < 4; l++) for (let b = 0; b < bins; b++) codeCounts[b] += this.u32[cnt / 4 + l * (bins + 1) + b];
    return { values, codeCounts };
  }

  /** Histogram of the first floor(n / 4)·4 elements, added into counts. */
  histogramInto(data: Float32Array, range: number, inv: number, bins: number, counts: Uint32Array): number {
    const n = data.length - (data.length % 4);
    const { offsets: [d, cnt], total } = layout([Math.min(n, CHUNK_FLOATS) * 4, 4 * bins * 4]);
    this.ensure(total);
    this.u32.fill(0, cnt / 4, cnt / 4 + 4 * bins);
    for (let i0 = 0; i0 < n; i0 += CHUNK_FLOATS) {
      const len = Math.min(CHUNK_FLOATS, n - i0);
      this.f32.set(data.subarray(i0, i0 + len), d / 4);
      this.k.histogram(d, len * 4, range, inv, bins - 1, cnt);
    }
    for (let l = 0; l < 4; l++) for (let b = 0; b < bins; b++) counts[b] += this.u32[cnt / 4 + l * bins + b];
    return n;
  }

  /** Rows [0, 4·floor(rows / 4)) into diff/ref; returns how many rows were done. */
  rowSquaredErrorsInto(a: Float32Array, b: Float32Array, rows: number, cols: number, diff: Float32Array, ref: Float32Array): number {
    const done = rows - (rows % 4);
    const per = this.rowsPerChunk(cols, 4);
    const { offsets: [pa, pb, od, or], total } = layout([per * cols * 4, per * cols * 4, per * 4, per * 4]);
    this.ensure(total);
    const f32 = this.f32;
    for (let r0 = 0; r0 < done; r0 += per) {
      const nr = Math.min(per, done - r0);
      f32.set(a.subarray(r0 * cols, (r0 + nr) * cols), pa / 4);
      f32.set(b.subarray(r0 * cols, (r0 + nr) * cols), pb / 4);
      this.k.rowSq(pa, pb, nr / 4, cols, od, or);
      diff.set(f32.subarray(od / 4, od / 4 + nr), r0);
      ref.set(f32.subarray(or / 4, or / 4 + nr), r0);
    }
    return done;
  }

  /** BF16 bytes (little-endian, even length) → f32. */
  decodeBF16(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length / 2)): Float32Array {
    const n = bytes.length / 2;
    const chunk = CHUNK_FLOATS;
    const { offsets: [s, d], total } = layout([chunk * 2, chunk * 4]);
    this.ensure(total);
    for (let i0 = 0; i0 < n; i0 += chunk) {
      const len = Math.min(chunk, n - i0);
      const len4 = Math.ceil(len / 4) * 4;
      this.u8.set(bytes.subarray(i0 * 2, (i0 + len) * 2), s);
      if (len4 !== len) this.u8.fill(0, s + len * 2, s + len4 * 2);
      this.k.bf16(s, len4 / 4, d);
      out.set(this.f32.subarray(d / 4, d / 4 + len), i0);
    }
    return out;
  }

  /** f32 → little-endian F16 bytes (RNE), as encodeF16. */
  encodeF16(values: Float32Array): Uint8Array {
    const n = values.length;
    const out = new Uint8Array(n * 2);
    const chunk = CHUNK_FLOATS;
    const { offsets: [s, d], total } = layout([chunk * 4, chunk * 2]);
    this.ensure(total);
    for (let i0 = 0; i0 < n; i0 += chunk) {
      const len = Math.min(chunk, n - i0);
      const len8 = Math.ceil(len / 8) * 8;
      this.f32.set(values.subarray(i0, i0 + len), s / 4);
      if (len8 !== len) this.f32.fill(0, s / 4 + len, s / 4 + len8);
      this.k.f16(s, len8 / 8, d);
      out.set(this.u8.subarray(d, d + len * 2), i0 * 2);
    }
    return out;
  }
}
