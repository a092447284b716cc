#!/usr/bin/env python3
"""The reference point of `npm run bench`: the pipeline's per-tensor math as a short vectorised
numpy script (BLAS for the K x K Hadamard stage), on the same checkpoint, one tensor at a time.

Per matrix: BF16 -> f32; row absmax and a 128-bin histogram of the original; RMSNorm gamma fused
into the columns; the residual rotation diag(s)·H (FWHT blocks + K x K stage) along rows (readers
of the residual stream, the embedding) and columns (o_proj, down_proj), the per-head rotation on
v_proj rows / o_proj columns; absmax and histogram again; steps by absmax or the MSE clip search
(21 coarse + 9 fine candidates, per row for sp, summed for per_tensor); round-half-even onto the
grid; F16; error sums; write F16 safetensors. Embeddings quantized or kept. Not the same bits as
the CLI (numpy's own signs and f32 summation order; H_K is a random ±1 K x K, the same cost as a
Hadamard of that order), not the report-only plain-RTN baseline: the same amount of math.

usage: bench-numpy.py --model DIR --out DIR [--bits 4] [--scheme sp|per_tensor]
                      [--clip mse|absmax] [--quantize-embeddings 1|0]
"""
import argparse
import json
import os
import struct

import numpy as np

CHUNK = 1 << 20  # elements per vectorised step (bounded memory, as the CLI's tiles)


def read_header(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    return header, 8 + n


def tensors(model_dir):
    files = sorted(p for p in os.listdir(model_dir) if p.endswith('.safetensors'))
    out = {}
    for name in files:
        path = os.path.join(model_dir, name)
        header, base = read_header(path)
        mm = np.memmap(path, dtype=np.uint8, mode='r')
        for k, v in header.items():
            if k == '__metadata__':
                continue
            b, e = v['data_offsets']
            out[k] = (mm, base + b, base + e, v['shape'], v['dtype'])
    return out


def load_f32(t):
    mm, b, e, shape, dtype = t
    raw = np.frombuffer(mm, dtype=np.uint16, count=(e - b) // 2, offset=b)
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)


def factor(n):
    for k in (1, 12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172):
        m = n // k
        if n % k == 0 and m & (m - 1) == 0:
            return k, m
    raise ValueError(f'no Hadamard factorisation of {n}')


class Rotation:
    def __init__(self, length, segment, rng):
        self.length, self.segment = length, segment
        self.k, self.m = factor(segment)
        self.signs = rng.choice(np.array([-1, 1], dtype=np.float32), size=length)
        self.hk_t = rng.choice(np.array([-1, 1], dtype=np.float32), size=(self.k, self.k)).T.copy()
        self.scale = np.float32(1 / np.sqrt(segment))

    def rows(self, w):
        """Every row (a vector of `length`) -> T(row); in place, in row chunks."""
        n, c = w.shape
        step = max(1, CHUNK // c)
        for r0 in range(0, n, step):
            x = w[r0:r0 + step] * self.signs
            x = x.reshape(-1, self.k, self.m)
            h = 1
            while h < self.m:
                y = x.reshape(x.shape[0], self.k, self.m // (2 * h), 2, h)
                a = y[:, :, :, 0, :].copy()
                b = y[:, :, :, 1, :]
                y[:, :, :, 0, :] = a + b
                y[:, :, :, 1, :] = a - b
                h *= 2
            if self.k > 1:
                x = np.matmul(self.hk_t, x)
            w[r0:r0 + step] = x.reshape(-1, c) * self.scale
        return w

    def cols(self, w):
        return np.ascontiguousarray(self.rows(np.ascontiguousarray(w.T)).T)


ALPHAS = (0.2 + 0.04 * np.arange(21)).astype(np.float32)
REFINE = (0.96 + 0.01 * np.arange(9)).astype(np.float32)


def sse(w, step_rows, cands, qmin, qmax):
    """sse[r, k] of round-to-nearest with step_rows[r]·cands[k], in row chunks."""
    n, c = w.shape
    out = np.empty((n, len(cands)), dtype=np.float32)
    rows = max(1, CHUNK // c)
    for r0 in range(0, n, rows):
        x = w[r0:r0 + rows]
        for k, a in enumerate(cands):
            s = (step_rows[r0:r0 + rows] * a)[:, None]
            q = np.clip(np.rint(x * (1 / s)), qmin, qmax)
            e = x - s * q
            out[r0:r0 + rows, k] = np.einsum('ij,ij->i', e, e)
    return out


def scales(w, row_max, bits, scheme, clip):
    qmax = 2 ** (bits - 1) - 1
    qmin = -qmax - 1
    rng_ = row_max if scheme == 'sp' else np.full_like(row_max, row_max.max())
    base = np.maximum(rng_, 1e-30) / qmax
    if clip == 'mse':
        pick = lambda e: e.argmin(1) if scheme == 'sp' else np.full(len(e), e.sum(0).argmin())
        base = base * ALPHAS[pick(sse(w, base, ALPHAS, qmin, qmax))]
        base = base * REFINE[pick(sse(w, base, REFINE, qmin, qmax))]
    return base.astype(np.float16).astype(np.float32), qmin, qmax


def quantize(w, step, qmin, qmax):
    n, c = w.shape
    out = np.empty((n, c), dtype=np.float16)
    diff = ref = 0.0
    rows = max(1, CHUNK // c)
    for r0 in range(0, n, rows):
        x = w[r0:r0 + rows]
        s = step[r0:r0 + rows, None]
        v = (s * np.clip(np.rint(x * (1 / s)), qmin, qmax)).astype(np.float16)
        out[r0:r0 + rows] = v
        e = x - v.astype(np.float32)
        diff += float(np.einsum('ij,ij->', e, e))
        ref += float(np.einsum('ij,ij->', x, x))
    return out, np.sqrt(diff / max(ref, 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--bits', type=int, default=4)
    ap.add_argument('--scheme', default='sp')
    ap.add_argument('--clip', default='mse')
    ap.add_argument('--quantize-embeddings', type=int, default=1)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, 'config.json')))
    d, heads, kv = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = d // heads
    rng = np.random.default_rng(0)
    res = Rotation(d, d, rng)
    head_kv = Rotation(kv * hd, hd, rng)
    head_q = Rotation(heads * hd, hd, rng)
    ts = tensors(a.model)
    os.makedirs(a.out, exist_ok=True)
    # one F16 safetensors file, written tensor by tensor (shapes are the input's)
    meta, offset = {}, 0
    for name in sorted(ts):
        shape = ts[name][3]
        nbytes = int(np.prod(shape)) * 2
        meta[name] = {'dtype': 'F16', 'shape': shape, 'data_offsets': [offset, offset + nbytes]}
        offset += nbytes
    js = json.dumps(meta).encode()
    js += b' ' * ((8 - (8 + len(js)) % 8) % 8)
    f = open(os.path.join(a.out, 'model.safetensors'), 'wb')
    f.write(struct.pack('<Q', len(js)))
    f.write(js)
    for name in sorted(ts):
        w = load_f32(ts[name])
        if w.ndim == 1:
            f.write(w.astype(np.float16).tobytes())
            continue
        w = np.array(w, dtype=np.float32)
        row_max0 = np.abs(w).max(1)
        np.histogram(w, bins=128, range=(-row_max0.max(), row_max0.max()))
        layer = name.split('.')
        proj = layer[-2] if name.startswith('model.layers.') else layer[1]
        if name.startswith('model.layers.'):
            norm = ts['.'.join(layer[:3]) + ('.input_layernorm.weight' if layer[3] == 'self_attn' else '.post_attention_layernorm.weight')]
            if proj in ('q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj'):
                w *= load_f32(norm)[None, :]
                res.rows(w)
                if proj == 'v_proj':
                    w = head_kv.cols(w)
            elif proj == 'o_proj':
                head_q.rows(w)
                w = res.cols(w)
            elif proj == 'down_proj':
                w = res.cols(w)
        elif name == 'lm_head.weight':
            w *= load_f32(ts['model.norm.weight'])[None, :]
            res.rows(w)
        else:  # the embedding
            res.rows(w)
        row_max = np.abs(w).max(1)
        np.histogram(w, bins=128, range=(-row_max.max(), row_max.max()))
        if name == 'model.embed_tokens.weight' and not a.quantize_embeddings:
            f.write(w.astype(np.float16).tobytes())
            continue
        step, qmin, qmax = scales(w, row_max, a.bits, a.scheme, a.clip)
        q, _err = quantize(w, step, qmin, qmax)
        f.write(q.tobytes())
        del w, q
    f.close()


if __name__ == '__main__':
    main()
