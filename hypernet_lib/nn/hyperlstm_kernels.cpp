// One HyperLSTM time step, everything but the large matrix product, in one call (chapter 5's CPU fast path).
//
// hyperlstm_native.py runs the time loop in Python.  Per step, forward, torch computes h_{t-1}[W_h | W^_h]
// (one matmul, MKL) and hyperlstm_step(0, ...) does the rest for every sample: the hyper cell (its small
// products h^_{t-1} W^_h^ included), z, the scaling vectors d, the main cell.  Backward, hyperlstm_step(1,
// ...) runs the same in reverse and torch computes dL/dh_{t-1} = dL/dR [W_h | W^_h]^T.  Written as ~60 torch
// calls instead, a step costs more in dispatch than in arithmetic at the chapter's size (B = 32, N_h = 256).
// The equations are Ha et al. (2016), Sec. 3.2 (Eqs. 10-13), as written out in hyperlstm_fast.py's
// docstring; the buffers and their layouts are those of hyperlstm_fast._run / _backward:
//
//   xin    (T, B, 4N_h + 4N_hat)  [W_x x_t | W^_x x_t + b^]       R_all  (T, B, 4N_h + 4N_hat)  h_{t-1}[W_h | W^_h]
//   A_all  (T, B, 4, N_hat)        hyper pre-activations A^        s_all  (T, B, 4, N_hat)  hyper gate activations
//   HC_all, HH_all (T+1, B, N_hat) c^_t, h^_t                      th_all (T, B, N_hat)     tanh(LN(c^_t))
//   Z_all  (T, B, 12, N_z)         z = [z_h | z_x | z_b] per gate  W_d    (12, N_z, N_h)
//   P_all, S_all (T, 4, B, N_h)    main pre-activations / gates    C_all  (T+1, B, N_h)     c_t
//   TC_all (T, B, N_h)             tanh(LN(c_t))                   out    (T, B, N_h)       h_t
//   layer-norm means and 1/sigma:  mA, rA (T, B, 4); mhc, rhc (T, B); mP, rP (T, 4, B); mc, rc (T, B)
//
// Gate order i, g, f, o; sigma for i, f, o and tanh for g.  Layer norm as torch.native_layer_norm: biased
// variance, 1/sqrt(var + eps).  The caller passes two int64 arrays: the sizes and flags, and the buffers'
// addresses (hyperlstm_native.PTR_NAMES lists them in the order of enum Ptr).  Built with -ffast-math so
// that tanh vectorises (glibc's libmvec); linked without it, so the process's floating-point mode is left
// alone.
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

enum Dim { T_, B_, H_, HH_, NZ_, LN_, ZCUR_, NDIMS_ };
enum Ptr {
  XIN, A_ALL, S_ALL, HC_ALL, HH_ALL, TH_ALL, MA, RA, MHC, RHC, G_HAT, B_HAT, G_HAT_C, B_HAT_C,
  Z_ALL, W_D, B0, R_ALL, P_ALL, S_MAIN, C_ALL, TC_ALL, OUT, MP, RP, MC, RC, G_MAIN, B_MAIN, G_C, B_C, MASKS,
  W_HATH, W_Z, B_Z,
  // backward only
  G_OUT, DH, DC, DHH, DHC, DCN_ALL, DY_ALL, DD_ALL, DR_ALL, DXIN, DZ_ALL, DGY_ALL, DHCN_ALL, NPTRS_
};

// sigma(x) = (1 + tanh(x/2)) / 2.  Not 1/(1 + exp(-x)): under -ffast-math the vector exp does not handle
// overflow (exp(320) -> NaN), and a clamp would turn a NaN input into a number.  tanh saturates cleanly,
// maps NaN to NaN, and costs about the same.
template <typename S> inline S sigm(S x) { return S(0.5) * std::tanh(S(0.5) * x) + S(0.5); }

template <typename S> struct Ctx {
  int64_t T, B, H, Hh, Nz, NN;
  bool ln, zcur;
  S eps;
  const int64_t* p;
  Ctx(const int64_t* dims, const int64_t* ptrs, double eps_)
      : T(dims[T_]), B(dims[B_]), H(dims[H_]), Hh(dims[HH_]), Nz(dims[NZ_]), NN(4 * dims[H_] + 4 * dims[HH_]),
        ln(dims[LN_] != 0), zcur(dims[ZCUR_] != 0), eps(S(eps_)), p(ptrs) {}
  S* at(Ptr k) const { return reinterpret_cast<S*>(p[k]); }
  // at(k) + i, or null for a buffer that is absent (the layer-norm ones without layer norm, the masks)
  S* off(Ptr k, int64_t i) const { return p[k] ? at(k) + i : nullptr; }
};

// mean and 1/sigma of x[0..n)
template <typename S> inline void moments(const S* __restrict x, int64_t n, S eps, S& m, S& r) {
  S sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  m = sum / S(n);
  S var = 0;
  for (int64_t j = 0; j < n; ++j) { S d = x[j] - m; var += d * d; }
  r = S(1) / std::sqrt(var / S(n) + eps);
}

// layer-norm input gradient: dx = r/n (n g - sum g - xh sum(g xh)),  g = dy * gain (gain may be null),
// xh = (x - m) r.  Written to dx (may alias nothing else), or added to it when add is true.
template <typename S>
inline void ln_backward(const S* __restrict dy, const S* __restrict gain, const S* __restrict x, int64_t n, S m,
                        S r, S* __restrict dx, bool add) {
  S s1 = 0, s2 = 0;
  for (int64_t j = 0; j < n; ++j) {
    S g = gain ? dy[j] * gain[j] : dy[j];
    s1 += g;
    s2 += g * (x[j] - m) * r;
  }
  const S a = r / S(n);
  for (int64_t j = 0; j < n; ++j) {
    S g = gain ? dy[j] * gain[j] : dy[j];
    S v = a * (S(n) * g - s1 - (x[j] - m) * r * s2);
    dx[j] = add ? dx[j] + v : v;
  }
}

// x <- dy * (x - m) r: the layer-norm gain's gradient terms, written over the normalised input, which the
// reverse loop no longer needs once step t is done.  After the loop, dL/dgain is one sum over these rows
// (hyperlstm_buffers._ln_affine_grads with products=True) instead of three more passes over the buffers.
template <typename S> inline void affine_product(const S* __restrict dy, S* __restrict x, int64_t n, S m, S r) {
  for (int64_t j = 0; j < n; ++j) x[j] = dy[j] * (x[j] - m) * r;
}

// ---- the pieces both cells share: each is an LSTM cell with layer norm (Eqs. 10 and 13 have one shape)

// One gate row: out = act(LN(x) * gain + bias) with layer norm, act(x + bias) without (bias may be null);
// act = tanh for the g gate, sigma otherwise.  Stores LN's mean and 1/sigma in m_out, r_out.
template <typename S>
inline void gate_forward(const S* __restrict x, int64_t n, bool ln, const S* __restrict gain, const S* __restrict bias,
                         S eps, S* m_out, S* r_out, bool tanh_gate, S* __restrict out) {
  if (ln) {
    S m, r;
    moments(x, n, eps, m, r);
    *m_out = m, *r_out = r;
    for (int64_t j = 0; j < n; ++j) out[j] = (x[j] - m) * r * gain[j] + bias[j];
  } else if (bias) {
    for (int64_t j = 0; j < n; ++j) out[j] = x[j] + bias[j];
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = x[j];
  }
  if (tanh_gate) for (int64_t j = 0; j < n; ++j) out[j] = std::tanh(out[j]);
  else           for (int64_t j = 0; j < n; ++j) out[j] = sigm(out[j]);
}

// The cell update from the gate activations i, g, f, o:  c_t = f c_{t-1} + i (g * mask),
// tc = tanh(LN(c_t) * gain + bias) (tanh(c_t) without layer norm),  h_t = o tc.  mask may be null.
template <typename S>
inline void cell_forward(const S* __restrict i, const S* __restrict g, const S* __restrict f, const S* __restrict o,
                         const S* __restrict mask, const S* __restrict c0, int64_t n, bool ln, const S* __restrict gain,
                         const S* __restrict bias, S eps, S* m_out, S* r_out, S* __restrict c, S* __restrict tc,
                         S* __restrict h) {
  if (mask) for (int64_t j = 0; j < n; ++j) c[j] = f[j] * c0[j] + i[j] * g[j] * mask[j];
  else      for (int64_t j = 0; j < n; ++j) c[j] = f[j] * c0[j] + i[j] * g[j];
  if (ln) {
    S m, r;
    moments(c, n, eps, m, r);
    *m_out = m, *r_out = r;
    for (int64_t j = 0; j < n; ++j) tc[j] = std::tanh((c[j] - m) * r * gain[j] + bias[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) tc[j] = std::tanh(c[j]);
  }
  for (int64_t j = 0; j < n; ++j) h[j] = o[j] * tc[j];
}

// cell_forward in reverse.  dh (+ dh_extra, may be null) is dL/dh_t, dc the carried dL/dc_t.  Writes
// dL/d(o), dL/d(i), dL/d(g * mask), dL/d(f) to dgate (four rows of n, gate order i, g, f, o), dL/dLN(c_t)
// to dcn, dL/dc_{t-1} to dc_prev; with layer norm also dcn * LN(c_t) over c (see affine_product).
template <typename S>
inline void cell_backward(const S* __restrict dh, const S* __restrict dh_extra, const S* __restrict dc,
                          const S* __restrict i, const S* __restrict g, const S* __restrict f, const S* __restrict o,
                          const S* __restrict mask, const S* __restrict c0, S* __restrict c, const S* __restrict tc,
                          int64_t n, bool ln, const S* __restrict gain, S m, S r, S* __restrict dcn,
                          S* __restrict dc_all, S* __restrict dgate, S* __restrict dc_prev) {
  for (int64_t j = 0; j < n; ++j) {                                     // h_t = o tanh(LN(c_t))
    S v = dh_extra ? dh[j] + dh_extra[j] : dh[j];
    dgate[3 * n + j] = v * tc[j];
    S u = v * o[j];
    dcn[j] = u - u * tc[j] * tc[j];
  }
  if (ln) {
    for (int64_t j = 0; j < n; ++j) dc_all[j] = dc[j];
    ln_backward(dcn, gain, c, n, m, r, dc_all, true);
    affine_product(dcn, c, n, m, r);                                    // c_t: read at step t only
  } else {
    for (int64_t j = 0; j < n; ++j) dc_all[j] = dc[j] + dcn[j];
  }
  for (int64_t j = 0; j < n; ++j) {                                     // c_t = f c_{t-1} + i g~
    dgate[j] = dc_all[j] * g[j];
    dgate[n + j] = dc_all[j] * i[j];
    dgate[2 * n + j] = dc_all[j] * c0[j];
    dc_prev[j] = dc_all[j] * f[j];
  }
  if (mask) for (int64_t j = 0; j < n; ++j) { dgate[j] *= mask[j]; dgate[n + j] *= mask[j]; }
}

// gate_forward in reverse: dy = dL/d(gate input after LN) from dL/d(activation) da and the activation s;
// dx = dL/dx (the pre-activation).  With layer norm also dy * LN(x) over x (see affine_product).
template <typename S>
inline void gate_backward(const S* __restrict da, const S* __restrict s, int64_t n, bool tanh_gate, bool ln,
                          const S* __restrict gain, S* __restrict x, S m, S r, S* __restrict dy, S* __restrict dx) {
  if (tanh_gate) for (int64_t j = 0; j < n; ++j) dy[j] = da[j] * (S(1) - s[j] * s[j]);
  else           for (int64_t j = 0; j < n; ++j) dy[j] = da[j] * (s[j] - s[j] * s[j]);
  if (ln) {
    ln_backward(dy, gain, x, n, m, r, dx, false);
    affine_product(dy, x, n, m, r);
  } else {
    for (int64_t j = 0; j < n; ++j) dx[j] = dy[j];
  }
}

// ---- forward, hyper cell: A^ = h_{t-1} W^_h + W^_x x_t + h^_{t-1} W^_h^; gates; c^_t; h^_t; z  (Eqs. 10-11)
template <typename S> void hyper_fwd(const Ctx<S>& c, int64_t t, int64_t b) {
  const int64_t B = c.B, H = c.H, Hh = c.Hh, tb = t * B + b;
  const S* __restrict xh = c.at(XIN) + tb * c.NN + 4 * H;
  const S* __restrict Rh = c.at(R_ALL) + tb * c.NN + 4 * H;
  const S* __restrict hh0 = c.at(HH_ALL) + tb * Hh;
  S* __restrict A = c.at(A_ALL) + tb * 4 * Hh;
  S* __restrict s = c.at(S_ALL) + tb * 4 * Hh;
  for (int64_t m = 0; m < 4 * Hh; ++m) A[m] = Rh[m] + xh[m];            // the first two from torch's matmuls
  for (int64_t i = 0; i < Hh; ++i) {
    const S hi = hh0[i];
    const S* __restrict w = c.at(W_HATH) + i * 4 * Hh;
    for (int64_t m = 0; m < 4 * Hh; ++m) A[m] += hi * w[m];
  }
  for (int64_t k = 0; k < 4; ++k)
    gate_forward(A + k * Hh, Hh, c.ln, c.off(G_HAT, k * Hh), c.at(B_HAT) + k * Hh, c.eps, c.off(MA, tb * 4 + k),
                 c.off(RA, tb * 4 + k), k == 1, s + k * Hh);
  S* __restrict hh = c.at(HH_ALL) + (tb + B) * Hh;
  cell_forward(s, s + Hh, s + 2 * Hh, s + 3 * Hh, static_cast<const S*>(nullptr), c.at(HC_ALL) + tb * Hh, Hh,
               c.ln, c.at(G_HAT_C), c.at(B_HAT_C), c.eps, c.off(MHC, tb), c.off(RHC, tb),
               c.at(HC_ALL) + (tb + B) * Hh, c.at(TH_ALL) + tb * Hh, hh);
  // z = W_z h^ + b_z: [z_h | z_x | z_b] for the 4 gates (Eq. 11), from h^_t or h^_{t-1}
  const int64_t nz = 12 * c.Nz;
  const S* __restrict src = c.zcur ? hh : hh0;
  S* __restrict z = c.at(Z_ALL) + tb * nz;
  const S* __restrict bz = c.at(B_Z);
  for (int64_t q = 0; q < nz; ++q) z[q] = bz[q];
  for (int64_t i = 0; i < Hh; ++i) {
    const S hi = src[i];
    const S* __restrict w = c.at(W_Z) + i * nz;
    for (int64_t q = 0; q < nz; ++q) z[q] += hi * w[q];
  }
}

// d[q] = z_q W_d[q] for one sample and gate group q: (N_z) x (N_z, N_h)                     (Eq. 12)
template <typename S> inline void scale_vector(const Ctx<S>& c, const S* __restrict zb, int64_t q, S* __restrict d) {
  const S* __restrict W = c.at(W_D) + q * c.Nz * c.H;
  for (int64_t j = 0; j < c.H; ++j) d[j] = 0;
  for (int64_t n = 0; n < c.Nz; ++n) {
    const S zq = zb[q * c.Nz + n];
    const S* __restrict w = W + n * c.H;
    for (int64_t j = 0; j < c.H; ++j) d[j] += zq * w[j];
  }
}

// ---- forward, main cell: P = d_h * W_h h + d_x * W_x x + W_bz z_b + b_0 (Eq. 13), LN, gates, c_t, h_t
template <typename S> void main_fwd(const Ctx<S>& c, int64_t t, int64_t b, S* __restrict scratch) {
  const int64_t B = c.B, H = c.H, tb = t * B + b;
  S* dh = scratch;
  S* dx = scratch + H;
  S* dbz = scratch + 2 * H;
  const S* zb = c.at(Z_ALL) + tb * 12 * c.Nz;
  for (int64_t k = 0; k < 4; ++k) {
    const int64_t tkb = (t * 4 + k) * B + b;
    const S* __restrict Rk = c.at(R_ALL) + tb * c.NN + k * H;
    const S* __restrict Xk = c.at(XIN) + tb * c.NN + k * H;
    const S* __restrict b0 = c.at(B0) + k * H;
    S* __restrict P = c.at(P_ALL) + tkb * H;
    scale_vector(c, zb, k, dh);
    scale_vector(c, zb, 4 + k, dx);
    scale_vector(c, zb, 8 + k, dbz);
    for (int64_t j = 0; j < H; ++j) P[j] = dh[j] * Rk[j] + dx[j] * Xk[j] + dbz[j] + b0[j];
    // without layer norm b_0 already holds the forget bias: no bias here
    gate_forward(P, H, c.ln, c.off(G_MAIN, k * H), c.off(B_MAIN, k * H), c.eps, c.off(MP, tkb), c.off(RP, tkb),
                 k == 1, c.at(S_MAIN) + tkb * H);
  }
  const S* __restrict S0 = c.at(S_MAIN) + (t * 4 * B + b) * H;          // gate rows are B * N_h apart
  cell_forward(S0, S0 + B * H, S0 + 2 * B * H, S0 + 3 * B * H, c.off(MASKS, tb * H),
               c.at(C_ALL) + tb * H, H, c.ln, c.at(G_C), c.at(B_C), c.eps, c.off(MC, tb), c.off(RC, tb),
               c.at(C_ALL) + (tb + B) * H, c.at(TC_ALL) + tb * H, c.at(OUT) + tb * H);
}

// ---- backward, main cell: from dL/dh_t (carried + output) and dL/dc_t to dL/dd, dL/d(W_h h), dL/d(W_x x),
// dL/dz and dL/dc_{t-1}.  The carried gradients sit in two-slot buffers: step t reads slot t%2 and writes
// dL/dc_{t-1} to slot (t+1)%2 (Python's matmul writes dL/dh_{t-1} there too).
template <typename S> void main_bwd(const Ctx<S>& c, int64_t t, int64_t b, S* __restrict scratch) {
  const int64_t B = c.B, H = c.H, TBH = c.T * c.B * c.H, tb = t * B + b;
  const int64_t rd = t & 1, wr = (t + 1) & 1;
  S* dcv = scratch;            // dL/dc_t (all of it)
  S* d = scratch + H;          // d_h or d_x of one gate, recomputed
  S* dS = scratch + 2 * H;     // dL/d(gate activation), 4 rows
  const S* __restrict S0 = c.at(S_MAIN) + (t * 4 * B + b) * H;          // gate rows are B * N_h apart
  cell_backward(c.at(DH) + (rd * B + b) * H, c.at(G_OUT) + tb * H, c.at(DC) + (rd * B + b) * H, S0, S0 + B * H,
                S0 + 2 * B * H, S0 + 3 * B * H, c.off(MASKS, tb * H), c.at(C_ALL) + tb * H,
                c.at(C_ALL) + (tb + B) * H, c.at(TC_ALL) + tb * H, H, c.ln, c.at(G_C), c.ln ? c.at(MC)[tb] : S(0),
                c.ln ? c.at(RC)[tb] : S(0), c.at(DCN_ALL) + tb * H, dcv, dS, c.at(DC) + (wr * B + b) * H);
  S* __restrict dZ = c.at(DZ_ALL) + tb * 12 * c.Nz;
  const S* zb = c.at(Z_ALL) + tb * 12 * c.Nz;
  for (int64_t k = 0; k < 4; ++k) {
    const int64_t tkb = (t * 4 + k) * B + b;
    // dd rows: 0-3 d_h, 4-7 d_x, 8-11 W_bz z_b (= dP); dd_all is (12, T, B, N_h)
    S* __restrict dP = c.at(DD_ALL) + (8 + k) * TBH + tb * H;
    gate_backward(dS + k * H, S0 + k * B * H, H, k == 1, c.ln, c.off(G_MAIN, k * H), c.at(P_ALL) + tkb * H,
                  c.ln ? c.at(MP)[tkb] : S(0), c.ln ? c.at(RP)[tkb] : S(0), c.at(DY_ALL) + tkb * H, dP);
    const S* __restrict Rk = c.at(R_ALL) + tb * c.NN + k * H;
    const S* __restrict Xk = c.at(XIN) + tb * c.NN + k * H;
    S* __restrict ddh = c.at(DD_ALL) + k * TBH + tb * H;
    S* __restrict ddx = c.at(DD_ALL) + (4 + k) * TBH + tb * H;
    S* __restrict dRk = c.at(DR_ALL) + tb * c.NN + k * H;
    S* __restrict dXk = c.at(DXIN) + tb * c.NN + k * H;
    for (int64_t j = 0; j < H; ++j) { ddh[j] = dP[j] * Rk[j]; ddx[j] = dP[j] * Xk[j]; }
    scale_vector(c, zb, k, d);
    for (int64_t j = 0; j < H; ++j) dRk[j] = dP[j] * d[j];
    scale_vector(c, zb, 4 + k, d);
    for (int64_t j = 0; j < H; ++j) dXk[j] = dP[j] * d[j];
    // dL/dz = W_d dd, for the three groups of this gate
    const S* rows[3] = {ddh, ddx, dP};
    for (int64_t g3 = 0; g3 < 3; ++g3) {
      const int64_t q = 4 * g3 + k;
      const S* __restrict W = c.at(W_D) + q * c.Nz * H;
      const S* __restrict dd = rows[g3];
      for (int64_t n = 0; n < c.Nz; ++n) {
        const S* __restrict w = W + n * H;
        S acc = 0;
        for (int64_t j = 0; j < H; ++j) acc += dd[j] * w[j];
        dZ[q * c.Nz + n] = acc;
      }
    }
  }
}

// ---- backward, hyper cell: from dL/dh^_t (carried, plus W_z^T dz when z comes from h^_t) and dL/dc^_t to
// dL/dA^ (written into dR_all's hyper columns), dL/dc^_{t-1} and dL/dh^_{t-1}.
template <typename S> void hyper_bwd(const Ctx<S>& c, int64_t t, int64_t b, S* __restrict scratch) {
  const int64_t B = c.B, H = c.H, Hh = c.Hh, tb = t * B + b, nz = 12 * c.Nz;
  const int64_t rd = t & 1, wr = (t + 1) & 1;
  S* dcv = scratch;
  S* ds = scratch + Hh;        // 4 rows
  S* __restrict dzs = scratch + 5 * Hh;
  // dL/d(the h^ that made z) = W_z dL/dz
  const S* __restrict dZ = c.at(DZ_ALL) + tb * nz;
  for (int64_t i = 0; i < Hh; ++i) {
    const S* __restrict w = c.at(W_Z) + i * nz;
    S acc = 0;
    for (int64_t q = 0; q < nz; ++q) acc += dZ[q] * w[q];
    dzs[i] = acc;
  }
  const S* __restrict s = c.at(S_ALL) + tb * 4 * Hh;
  cell_backward(c.at(DHH) + (rd * B + b) * Hh, c.zcur ? static_cast<const S*>(dzs) : nullptr,
                c.at(DHC) + (rd * B + b) * Hh, s, s + Hh, s + 2 * Hh, s + 3 * Hh, static_cast<const S*>(nullptr),
                c.at(HC_ALL) + tb * Hh, c.at(HC_ALL) + (tb + B) * Hh, c.at(TH_ALL) + tb * Hh, Hh, c.ln,
                c.at(G_HAT_C), c.ln ? c.at(MHC)[tb] : S(0), c.ln ? c.at(RHC)[tb] : S(0), c.at(DHCN_ALL) + tb * Hh,
                dcv, ds, c.at(DHC) + (wr * B + b) * Hh);
  S* __restrict dA = c.at(DR_ALL) + tb * c.NN + 4 * H;
  for (int64_t k = 0; k < 4; ++k)
    gate_backward(ds + k * Hh, s + k * Hh, Hh, k == 1, c.ln, c.off(G_HAT, k * Hh), c.at(A_ALL) + (tb * 4 + k) * Hh,
                  c.ln ? c.at(MA)[tb * 4 + k] : S(0), c.ln ? c.at(RA)[tb * 4 + k] : S(0),
                  c.at(DGY_ALL) + (tb * 4 + k) * Hh, dA + k * Hh);
  // dL/dh^_{t-1} = W^_h^ dL/dA^  (+ W_z dL/dz when z came from h^_{t-1})
  S* __restrict dhhp = c.at(DHH) + (wr * B + b) * Hh;
  for (int64_t i = 0; i < Hh; ++i) {
    const S* __restrict w = c.at(W_HATH) + i * 4 * Hh;
    S acc = 0;
    for (int64_t m = 0; m < 4 * Hh; ++m) acc += dA[m] * w[m];
    dhhp[i] = c.zcur ? acc : acc + dzs[i];
  }
}


// One call: every sample of step t (forward: hyper cell, z, main cell; backward: main cell, then hyper
// cell), split over the OpenMP threads when there is enough work.  Samples are independent within a step,
// so each thread runs whole samples.  Linked with -fopenmp, the library shares the libgomp that torch has
// loaded, so these threads are torch's own (torch.set_num_threads applies) rather than a second pool.
template <typename S> void run(int which, const int64_t* dims, const int64_t* ptrs, int64_t t, double eps) {
  const Ctx<S> c(dims, ptrs, eps);
  const bool parallel = c.B > 1 && c.B * 4 * (c.H + c.Hh) >= 4096;
#pragma omp parallel if (parallel)
  {
    std::vector<S> scratch(6 * c.H + 8 * c.Hh);
    S* main_scratch = scratch.data();
    S* hyper_scratch = scratch.data() + 6 * c.H;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < c.B; ++b) {
      if (which == 0) {
        hyper_fwd(c, t, b);
        main_fwd(c, t, b, main_scratch);
      } else {
        main_bwd(c, t, b, main_scratch);
        hyper_bwd(c, t, b, hyper_scratch);
      }
    }
  }
}

}  // namespace

extern "C" {
// which: 0 forward step, 1 backward step; double_: 1 for float64
// dims: T, B, N_h, N_hat, N_z, layer norm, z from h^_t; ptrs: the buffers in the order of enum Ptr (0: absent)
void hyperlstm_step(int which, int double_, const int64_t* dims, const int64_t* ptrs, int64_t t, double eps) {
  if (double_) run<double>(which, dims, ptrs, t, eps);
  else run<float>(which, dims, ptrs, t, eps);
}
int hyperlstm_kernels_version() { return 4; }
int hyperlstm_n_ptrs() { return NPTRS_; }
int hyperlstm_n_dims() { return NDIMS_; }
}
