// rnnkit's native BPTT kernels: the LSTM and GRU recurrences on the CPU.
//
// The same algorithm as the Python loops in rnnkit/engines/bptt/{lstm,gru}.py (the
// reference path; docs/bptt.md has the equations), with the time loop in C++ and each
// step's element-wise work fused into one pass per batch row (gates, layer norms,
// peepholes, zoneout, padding), rows spread over threads with at::parallel_for.
// The GEMMs are ATen's (at::mm / addmm), as in the Python loops.
//
// Buffers and their layout are exactly those of the Python loops, so that the Python
// side computes the parameter gradients after the loop the same way for both.
// Built on first use by rnnkit/engines/bptt/native/__init__.py (torch.utils.cpp_extension).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "activations.h"

namespace rnnkit_native {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// ---------------------------------------------------------------------------------
// Layer norm over one row of n values: statistics, and the gradient of the input.

// Sums over a row are accumulated in fp64 (rows are short; it costs little and keeps
// fp32 results as close to an fp64 computation as ATen's cascade sums are).
template <typename T>
inline void row_moments(const T* x, int64_t n, T eps, T* mean_out, T* rstd_out) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]);
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean;
    sq += d * d;
  }
  *mean_out = static_cast<T>(mean);
  *rstd_out = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(n) + static_cast<double>(eps)));
}

// y = (x - mean) rstd γ (+ β): one row's layer norm; its statistics go to mean_out, rstd_out.
template <typename T>
inline void row_layer_norm(const T* x, int64_t n, const T* gamma, const T* beta, T eps,
                           T* mean_out, T* rstd_out, T* y) {
  T mean, rstd;
  row_moments(x, n, eps, &mean, &rstd);
  *mean_out = mean;
  *rstd_out = rstd;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * rstd * gamma[j];
  if (beta) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] += beta[j];
  }
}

// dx = rstd (γ dy - mean(γ dy) - x̂ mean(γ dy x̂)),  x̂ = (x - mean) rstd; and the
// gain's gradient of this row, dγ += dy ⊙ x̂, into an fp64 accumulator.
template <typename T>
inline void row_layer_norm_backward(const T* dy, const T* x, const T* gamma, T mean, T rstd,
                                    int64_t n, T* dx, double* d_gamma) {
  double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < n; ++j) {
    const T gdy = gamma[j] * dy[j];
    const T xhat = (x[j] - mean) * rstd;
    s1 += static_cast<double>(gdy);
    s2 += static_cast<double>(gdy * xhat);
    d_gamma[j] += static_cast<double>(dy[j] * xhat);
  }
  const T m1 = static_cast<T>(s1 / static_cast<double>(n));
  const T m2 = static_cast<T>(s2 / static_cast<double>(n));
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    dx[j] = rstd * (gamma[j] * dy[j] - m1 - (x[j] - mean) * rstd * m2);
  }
}

// Per-row fp64 accumulators of a parameter gradient (a row per batch row, so no two
// threads share one and the sum does not depend on the thread count), summed at the end.
struct Accumulator {
  Tensor rows;  // (B, n) fp64, or undefined

  Accumulator(bool on, int64_t batch, int64_t n, const Tensor& like)
      : rows(on ? at::zeros({batch, n}, like.options().dtype(at::kDouble)) : Tensor()) {}
  double* row(int64_t b) { return rows.data_ptr<double>() + b * rows.size(1); }
  Tensor total(const Tensor& like) const {
    return rows.defined() ? rows.sum(0).to(like.scalar_type()) : Tensor();
  }
};

// A keep weight (padding + zoneout) for one step: (B, H) or (B, 1) values, the latter
// possibly broadcast with stride 0.
template <typename T>
struct Keep {
  const T* data = nullptr;
  int64_t batch_stride = 0;
  bool per_unit = false;  // (B, H) rather than one value per row

  explicit operator bool() const { return data != nullptr; }
  const T* row(int64_t b) const { return data + b * batch_stride; }
};

template <typename T>
Keep<T> keep_at(const OptTensor& keep, int64_t t) {
  Keep<T> k;
  if (!keep.has_value()) return k;
  const Tensor& w = *keep;  // (T, B, H or 1); last stride 0 or 1 (checked in Python)
  k.data = w.const_data_ptr<T>() + t * w.stride(0);
  k.batch_stride = w.stride(1);
  k.per_unit = w.size(2) > 1;
  return k;
}

// torch.lerp's formula: a + w (b - a), computed from the nearer end so that w = 1 gives
// b exactly (a padded step keeps its state bit for bit) and w = 0 gives a.
template <typename T>
inline T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// out = lerp(new, prev, k): the kept part of the previous value, the rest new.
template <typename T>
inline void keep_mix(const Keep<T>& keep, int64_t b, const T* fresh, const T* prev,
                     int64_t n, T* out) {
  const T* k = keep.row(b);
  if (keep.per_unit) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = lerp(fresh[j], prev[j], k[j]);
  } else {
    const T k0 = k[0];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = lerp(fresh[j], prev[j], k0);
  }
}

// out = g (1 - k) (the part of a gradient that reaches the new value).
template <typename T>
inline void keep_release(const Keep<T>& keep, int64_t b, const T* g, int64_t n, T* out) {
  if (!keep) {
    std::copy(g, g + n, out);
    return;
  }
  const T* k = keep.row(b);
  if (keep.per_unit) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = g[j] - g[j] * k[j];
  } else {
    const T k0 = k[0];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = g[j] - g[j] * k0;
  }
}

// out += k g (the part of a gradient that the kept previous value receives).
template <typename T>
inline void keep_accumulate(const Keep<T>& keep, int64_t b, const T* g, int64_t n, T* out) {
  if (!keep) return;
  const T* k = keep.row(b);
  if (keep.per_unit) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] += k[j] * g[j];
  } else {
    const T k0 = k[0];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] += k0 * g[j];
  }
}

template <typename T>
const T* ptr_or_null(const OptTensor& t) {
  return t.has_value() ? t->const_data_ptr<T>() : nullptr;
}

// Rows per task: enough work per thread to pay for the fork (~16k values).
inline int64_t grain_for(int64_t row_width) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_width));
}

// Step t's slice of a (T, B, ·) buffer (nullptr for t < 0: no such step).
template <typename T>
const T* step_in(const Tensor& x, int64_t t) {
  return t < 0 ? nullptr : x.const_data_ptr<T>() + t * x.stride(0);
}
template <typename T>
T* step_out(const Tensor& x, int64_t t) {
  return x.data_ptr<T>() + t * x.stride(0);
}

// The n-th visited step, and the step visited before it (-1 for the first): a direction
// visits 0..T-1, or T-1..0 in reverse.
inline int64_t visited(int64_t n, int64_t steps, bool reverse) {
  return reverse ? steps - 1 - n : n;
}
inline int64_t visited_before(int64_t n, int64_t steps, bool reverse) {
  return n == 0 ? -1 : visited(n - 1, steps, reverse);
}

// δh_{t-1} += m_h ⊙ (δ_t W̃_hh), the gradient through the recurrent product (one GEMM);
// `scratch` is a (B, H) buffer, used only with a recurrent dropout mask.
void add_recurrent_grad(Tensor& dh_prev, const Tensor& d_raw_t, const Tensor& weight_hh,
                        const OptTensor& recurrent_mask, Tensor& scratch) {
  if (recurrent_mask.has_value()) {
    at::mm_out(scratch, d_raw_t, weight_hh);
    dh_prev.addcmul_(scratch, *recurrent_mask);
  } else {
    dh_prev.addmm_(d_raw_t, weight_hh);
  }
}

Tensor maybe_empty(bool on, const Tensor& like, at::IntArrayRef shape) {
  return on ? like.new_empty(shape) : Tensor();
}

// ---------------------------------------------------------------------------------
// LSTM. Gate order i, f, g, o. See rnnkit/engines/bptt/lstm.py for the equations.

struct LSTMForwardOut {
  Tensor hs, cs, gates, tau, c_new, h_in, raw, mean_h, rstd_h, mean_c, rstd_c;
};

template <typename T>
void lstm_forward_loop(const Tensor& a, const Tensor& weight_hh, const Tensor& h0,
                       const Tensor& c0, const OptTensor& ln_weight_hh,
                       const OptTensor& ln_weight_c, const OptTensor& ln_bias_c,
                       const OptTensor& peephole, const OptTensor& keep_h,
                       const OptTensor& keep_c, const OptTensor& recurrent_mask,
                       bool reverse, bool save, double eps_d, LSTMForwardOut& o) {
  const int64_t steps = a.size(0), batch = a.size(1), G = a.size(2), H = G / 4;
  const T eps = static_cast<T>(eps_d);
  const Tensor w_t = weight_hh.t();
  const T* ln_g = ptr_or_null<T>(ln_weight_hh);
  const T* lnc_g = ptr_or_null<T>(ln_weight_c);
  const T* lnc_b = ptr_or_null<T>(ln_bias_c);
  const T* peep = ptr_or_null<T>(peephole);
  Tensor pre = a.new_empty({batch, G});  // the GEMM's result when there is no LN
  const Tensor h_init = h0.contiguous(), c_init = c0.contiguous();
  for (int64_t n = 0; n < steps; ++n) {
    const int64_t t = visited(n, steps, reverse);
    const int64_t k = save ? t : 0;
    const int64_t prev_t = visited_before(n, steps, reverse);
    const Tensor h_prev = n == 0 ? h_init : o.hs[prev_t];
    const Tensor c_prev = n == 0 ? c_init : o.cs[prev_t];
    Tensor x_h = h_prev;
    if (recurrent_mask.has_value()) {  // h̃ = m_h ⊙ h_{t-1}, kept for dW_hh
      x_h = o.h_in[k];
      at::mul_out(x_h, h_prev, *recurrent_mask);
    }
    Tensor raw_t = ln_g ? o.raw[k] : pre;
    at::mm_out(raw_t, x_h, w_t);  // W̃_hh h̃_{t-1}

    const T* a_t = step_in<T>(a, t);
    const T* raw_p = raw_t.const_data_ptr<T>();
    const T* hp = h_prev.const_data_ptr<T>();
    const T* cp = c_prev.const_data_ptr<T>();
    T* gates = step_out<T>(o.gates, k);
    T* tau = step_out<T>(o.tau, k);
    T* c_new = keep_c.has_value() ? step_out<T>(o.c_new, k)
                                  : step_out<T>(o.cs, t);
    T* h_out = step_out<T>(o.hs, t);
    T* c_out = step_out<T>(o.cs, t);
    T* mean_h = ln_g ? step_out<T>(o.mean_h, k) : nullptr;
    T* rstd_h = ln_g ? step_out<T>(o.rstd_h, k) : nullptr;
    T* mean_c = lnc_g ? step_out<T>(o.mean_c, k) : nullptr;
    T* rstd_c = lnc_g ? step_out<T>(o.rstd_c, k) : nullptr;
    const Keep<T> kh = keep_at<T>(keep_h, t), kc = keep_at<T>(keep_c, t);

    at::parallel_for(0, batch, grain_for(G), [&](int64_t begin, int64_t end) {
      std::vector<T> tmp(G + H);
      T* p = tmp.data();  // pre-activations â
      T* hn = p + G;      // ĥ before zoneout/padding
      for (int64_t b = begin; b < end; ++b) {
        const T* ab = a_t + b * G;
        const T* rb = raw_p + b * G;
        const T* cpb = cp + b * H;
        T* gb = gates + b * G;
        T* cnb = c_new + b * H;
        if (ln_g) {
          row_layer_norm(rb, G, ln_g, static_cast<const T*>(nullptr), eps, mean_h + b,
                         rstd_h + b, p);
        } else {
          std::copy(rb, rb + G, p);
        }
#pragma omp simd
        for (int64_t j = 0; j < G; ++j) p[j] += ab[j];
        if (peep) {  // i and f peek at c_{t-1}
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            p[j] += peep[j] * cpb[j];
            p[H + j] += peep[H + j] * cpb[j];
          }
        }
#pragma omp simd
        for (int64_t j = 0; j < 2 * H; ++j) gb[j] = Act<T>::sigmoid(p[j]);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) gb[2 * H + j] = Act<T>::tanh(p[2 * H + j]);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) cnb[j] = gb[H + j] * cpb[j] + gb[j] * gb[2 * H + j];
        if (peep) {  // o peeks at the new cell state
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) p[3 * H + j] += peep[2 * H + j] * cnb[j];
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) gb[3 * H + j] = Act<T>::sigmoid(p[3 * H + j]);
        T* tb = tau + b * H;
        if (lnc_g) {
          row_layer_norm(cnb, H, lnc_g, lnc_b, eps, mean_c + b, rstd_c + b, tb);
        } else {
          std::copy(cnb, cnb + H, tb);
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) tb[j] = Act<T>::tanh(tb[j]);
        T* hb = h_out + b * H;
        T* fresh = kh ? hn : hb;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) fresh[j] = gb[3 * H + j] * tb[j];
        if (kh) keep_mix(kh, b, hn, hp + b * H, H, hb);
        if (kc) keep_mix(kc, b, cnb, cpb, H, c_out + b * H);
      }
    });
  }
}

std::vector<Tensor> lstm_forward(const Tensor& a, const Tensor& weight_hh, const Tensor& h0,
                                 const Tensor& c0, const OptTensor& ln_weight_hh,
                                 const OptTensor& ln_weight_c, const OptTensor& ln_bias_c,
                                 const OptTensor& peephole, const OptTensor& keep_h,
                                 const OptTensor& keep_c, const OptTensor& recurrent_mask,
                                 bool reverse, bool save, double eps) {
  TORCH_CHECK(a.dim() == 3 && a.is_contiguous(), "lstm_forward: a must be contiguous (T, B, 4H)");
  const int64_t steps = a.size(0), batch = a.size(1), G = a.size(2), H = G / 4;
  const int64_t slots = save ? steps : 1;
  LSTMForwardOut o;
  o.hs = a.new_empty({steps, batch, H});
  o.cs = a.new_empty({steps, batch, H});
  o.gates = a.new_empty({slots, batch, G});
  o.tau = a.new_empty({slots, batch, H});
  o.c_new = keep_c.has_value() ? a.new_empty({slots, batch, H}) : o.cs;
  o.h_in = maybe_empty(recurrent_mask.has_value(), a, {slots, batch, H});
  const bool ln_h = ln_weight_hh.has_value(), ln_c = ln_weight_c.has_value();
  o.raw = maybe_empty(ln_h, a, {slots, batch, G});
  o.mean_h = maybe_empty(ln_h, a, {slots, batch, 1});
  o.rstd_h = maybe_empty(ln_h, a, {slots, batch, 1});
  o.mean_c = maybe_empty(ln_c, a, {slots, batch, 1});
  o.rstd_c = maybe_empty(ln_c, a, {slots, batch, 1});
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_lstm_forward", [&] {
    lstm_forward_loop<scalar_t>(a, weight_hh, h0, c0, ln_weight_hh, ln_weight_c, ln_bias_c,
                                peephole, keep_h, keep_c, recurrent_mask, reverse, save, eps, o);
  });
  return {o.hs, o.cs, o.gates, o.tau, o.c_new, o.h_in, o.raw,
          o.mean_h, o.rstd_h, o.mean_c, o.rstd_c};
}

struct LSTMGrads {
  Tensor d_pre, d_raw, dh, dc;
  Accumulator ln_hh, ln_c, ln_c_bias, peephole;  // Σ over steps and rows
};

template <typename T>
void lstm_backward_loop(const Tensor& d_hs, const Tensor& d_cs, const Tensor& weight_hh,
                        const Tensor& c0, const OptTensor& ln_weight_hh,
                        const OptTensor& ln_weight_c, const OptTensor& peephole,
                        const OptTensor& keep_h, const OptTensor& keep_c,
                        const OptTensor& recurrent_mask, const Tensor& gates,
                        const Tensor& tau, const Tensor& c_new, const Tensor& cs,
                        const OptTensor& raw, const OptTensor& mean_h,
                        const OptTensor& rstd_h, const OptTensor& mean_c,
                        const OptTensor& rstd_c, bool reverse, LSTMGrads& out) {
  const int64_t steps = gates.size(0), batch = gates.size(1), G = gates.size(2), H = G / 4;
  const T* ln_g = ptr_or_null<T>(ln_weight_hh);
  const T* lnc_g = ptr_or_null<T>(ln_weight_c);
  const T* peep = ptr_or_null<T>(peephole);
  const T* raw_p = ptr_or_null<T>(raw);
  const T* mh = ptr_or_null<T>(mean_h);
  const T* rh = ptr_or_null<T>(rstd_h);
  const T* mc = ptr_or_null<T>(mean_c);
  const T* rc = ptr_or_null<T>(rstd_c);
  const Tensor c_init = c0.contiguous();
  Tensor& dh = out.dh;
  Tensor& dc = out.dc;
  Tensor dh_next = dh.new_empty({batch, H}), dc_next = dc.new_empty({batch, H});
  Tensor through_w = recurrent_mask.has_value() ? dh.new_empty({batch, H}) : Tensor();
  // Visit the steps in the opposite order of the forward loop.
  for (int64_t n = steps - 1; n >= 0; --n) {
    const int64_t t = visited(n, steps, reverse);
    const int64_t before = visited_before(n, steps, reverse);
    const T* g_t = step_in<T>(gates, t);
    const T* tau_t = step_in<T>(tau, t);
    const T* cn_t = step_in<T>(c_new, t);
    const T* cp = before < 0 ? c_init.const_data_ptr<T>()
                             : step_in<T>(cs, before);
    const T* ext_h = step_in<T>(d_hs, before);
    const T* ext_c = step_in<T>(d_cs, before);
    const T* dhp = dh.const_data_ptr<T>();
    const T* dcp = dc.const_data_ptr<T>();
    T* dpre_t = step_out<T>(out.d_pre, t);
    T* draw_t = step_out<T>(out.d_raw, t);  // == dpre_t without LN
    T* dh_base = dh_next.data_ptr<T>();
    T* dc_out = dc_next.data_ptr<T>();
    const Keep<T> kh = keep_at<T>(keep_h, t), kc = keep_at<T>(keep_c, t);

    at::parallel_for(0, batch, grain_for(G), [&](int64_t begin, int64_t end) {
      std::vector<T> tmp(3 * H);
      T* dhn = tmp.data();  // δĥ_t = (1 - k^h) δh_t
      T* thr = dhn + H;     // ∂L/∂(shown ĉ)
      T* dcn = thr + H;     // δĉ_t
      for (int64_t b = begin; b < end; ++b) {
        const T* gb = g_t + b * G;
        const T* tb = tau_t + b * H;
        const T* cnb = cn_t + b * H;
        const T* cpb = cp + b * H;
        const T* dhb = dhp + b * H;
        const T* dcb = dcp + b * H;
        const int64_t s = t * batch + b;
        T* dp = dpre_t + b * G;
        keep_release(kh, b, dhb, H, dhn);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T o = gb[3 * H + j];
          dp[3 * H + j] = tb[j] * dhn[j] * (T(1) - o) * o;
          thr[j] = dhn[j] * o * (T(1) - tb[j] * tb[j]);
        }
        if (lnc_g) {  // the LN on ĉ sits between the state and the tanh
          double* d_shift = out.ln_c_bias.row(b);
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) d_shift[j] += static_cast<double>(thr[j]);
          row_layer_norm_backward(thr, cnb, lnc_g, mc[s], rc[s], H, dcn, out.ln_c.row(b));
        } else {
          std::copy(thr, thr + H, dcn);
        }
        keep_release(kc, b, dcb, H, thr);  // the carried part of δc_t, reusing thr
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dcn[j] += thr[j];
        if (peep) {  // o reads ĉ_t through p_o
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) dcn[j] += peep[2 * H + j] * dp[3 * H + j];
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T i = gb[j], f = gb[H + j], g = gb[2 * H + j];
          dp[j] = g * dcn[j] * (T(1) - i) * i;
          dp[H + j] = cpb[j] * dcn[j] * (T(1) - f) * f;
          dp[2 * H + j] = i * dcn[j] * (T(1) - g * g);
        }
        if (peep) {  // ∂L/∂p_{i,f} += δâ_{i,f} ⊙ c_{t-1}, ∂L/∂p_o += δâ_o ⊙ ĉ_t
          double* dpeep = out.peephole.row(b);
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            dpeep[j] += static_cast<double>(dp[j] * cpb[j]);
            dpeep[H + j] += static_cast<double>(dp[H + j] * cpb[j]);
            dpeep[2 * H + j] += static_cast<double>(dp[3 * H + j] * cnb[j]);
          }
        }
        if (ln_g) {
          row_layer_norm_backward(dp, raw_p + s * G, ln_g, mh[s], rh[s], G, draw_t + b * G,
                                  out.ln_hh.row(b));
        }
        T* dco = dc_out + b * H;
        const T* ecb = ext_c ? ext_c + b * H : nullptr;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          dco[j] = (ecb ? ecb[j] : T(0)) + dcn[j] * gb[H + j];
        }
        if (peep) {  // i and f read c_{t-1}
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) dco[j] += peep[j] * dp[j] + peep[H + j] * dp[H + j];
        }
        keep_accumulate(kc, b, dcb, H, dco);
        T* dhb_out = dh_base + b * H;
        const T* ehb = ext_h ? ext_h + b * H : nullptr;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dhb_out[j] = ehb ? ehb[j] : T(0);
        keep_accumulate(kh, b, dhb, H, dhb_out);
      }
    });
    add_recurrent_grad(dh_next, out.d_raw[t], weight_hh, recurrent_mask, through_w);
    std::swap(dh, dh_next);
    std::swap(dc, dc_next);
  }
}

// Returns δâ (the gradient of a), δ before the recurrent LN (== δâ without it), δh_0,
// δc_0, and the gradients of the LN gains, the LN shift on c and the peepholes
// ((3, H)), each undefined where the option is off.
std::vector<Tensor> lstm_backward(
    const Tensor& d_hs, const Tensor& d_cs, const Tensor& weight_hh, const Tensor& c0,
    const OptTensor& ln_weight_hh, const OptTensor& ln_weight_c, const OptTensor& peephole,
    const OptTensor& keep_h, const OptTensor& keep_c, const OptTensor& recurrent_mask,
    const Tensor& gates, const Tensor& tau, const Tensor& c_new, const Tensor& cs,
    const OptTensor& raw, const OptTensor& mean_h, const OptTensor& rstd_h,
    const OptTensor& mean_c, const OptTensor& rstd_c, bool reverse) {
  TORCH_CHECK(d_hs.is_contiguous() && d_cs.is_contiguous(),
              "lstm_backward: the output gradients must be contiguous");
  const int64_t steps = gates.size(0), batch = gates.size(1), G = gates.size(2), H = G / 4;
  const int64_t last = reverse ? 0 : steps - 1;
  const bool ln_c = ln_weight_c.has_value();
  LSTMGrads out{gates.new_empty({steps, batch, G}),
                Tensor(),
                d_hs[last].clone(),
                d_cs[last].clone(),
                Accumulator(ln_weight_hh.has_value(), batch, G, gates),
                Accumulator(ln_c, batch, H, gates),
                Accumulator(ln_c, batch, H, gates),
                Accumulator(peephole.has_value(), batch, 3 * H, gates)};
  out.d_raw = raw.has_value() ? gates.new_empty({steps, batch, G}) : out.d_pre;
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "rnnkit_lstm_backward", [&] {
    lstm_backward_loop<scalar_t>(d_hs, d_cs, weight_hh, c0, ln_weight_hh, ln_weight_c, peephole,
                                 keep_h, keep_c, recurrent_mask, gates, tau, c_new, cs, raw,
                                 mean_h, rstd_h, mean_c, rstd_c, reverse, out);
  });
  Tensor d_peephole = out.peephole.total(gates);
  if (d_peephole.defined()) d_peephole = d_peephole.view({3, H});
  return {out.d_pre, out.d_raw, out.dh, out.dc, out.ln_hh.total(gates),
          out.ln_c.total(gates), out.ln_c_bias.total(gates), d_peephole};
}

// ---------------------------------------------------------------------------------
// GRU. Gate order r, z, n; b_hn stays inside the reset gate's product.

template <typename T>
void gru_forward_loop(const Tensor& a, const Tensor& weight_hh, const Tensor& h0,
                      const OptTensor& bias_hn, const OptTensor& ln_weight_hh,
                      const OptTensor& keep, const OptTensor& recurrent_mask, bool reverse,
                      bool save, double eps_d, Tensor& hs, Tensor& gates, Tensor& q,
                      Tensor& h_in, Tensor& raw, Tensor& mean, Tensor& rstd) {
  const int64_t steps = a.size(0), batch = a.size(1), G = a.size(2), H = G / 3;
  const T eps = static_cast<T>(eps_d);
  const Tensor w_t = weight_hh.t();
  const T* ln_g = ptr_or_null<T>(ln_weight_hh);
  const T* bn = ptr_or_null<T>(bias_hn);
  const Tensor h_init = h0.contiguous();
  for (int64_t n = 0; n < steps; ++n) {
    const int64_t t = visited(n, steps, reverse);
    const int64_t k = save ? t : 0;
    const Tensor h_prev = n == 0 ? h_init : hs[visited_before(n, steps, reverse)];
    Tensor x_h = h_prev;
    if (recurrent_mask.has_value()) {
      x_h = h_in[k];
      at::mul_out(x_h, h_prev, *recurrent_mask);
    }
    Tensor q_t = q[k];
    Tensor raw_t = ln_g ? raw[k] : q_t;
    at::mm_out(raw_t, x_h, w_t);

    const T* a_t = step_in<T>(a, t);
    const T* raw_p = raw_t.const_data_ptr<T>();
    T* q_p = q_t.data_ptr<T>();
    const T* hp = h_prev.const_data_ptr<T>();
    T* g_t = step_out<T>(gates, k);
    T* h_out = step_out<T>(hs, t);
    T* mean_p = ln_g ? step_out<T>(mean, k) : nullptr;
    T* rstd_p = ln_g ? step_out<T>(rstd, k) : nullptr;
    const Keep<T> kp = keep_at<T>(keep, t);

    at::parallel_for(0, batch, grain_for(G), [&](int64_t begin, int64_t end) {
      std::vector<T> tmp(H);
      for (int64_t b = begin; b < end; ++b) {
        const T* ab = a_t + b * G;
        T* qb = q_p + b * G;
        T* gb = g_t + b * G;
        if (ln_g) {  // q = LN(raw) γ + [0; 0; b_hn]
          row_layer_norm(raw_p + b * G, G, ln_g, static_cast<const T*>(nullptr), eps,
                         mean_p + b, rstd_p + b, qb);
        }
        if (bn) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) qb[2 * H + j] += bn[j];
        }
#pragma omp simd
        for (int64_t j = 0; j < 2 * H; ++j) gb[j] = Act<T>::sigmoid(ab[j] + qb[j]);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          gb[2 * H + j] = Act<T>::tanh(ab[2 * H + j] + gb[j] * qb[2 * H + j]);
        }
        const T* hpb = hp + b * H;
        T* hb = h_out + b * H;
        T* fresh = kp ? tmp.data() : hb;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          fresh[j] = lerp(gb[2 * H + j], hpb[j], gb[H + j]);  // n + z (h_{t-1} - n)
        }
        if (kp) keep_mix(kp, b, fresh, hpb, H, hb);
      }
    });
  }
}

std::vector<Tensor> gru_forward(const Tensor& a, const Tensor& weight_hh, const Tensor& h0,
                                const OptTensor& bias_hn, const OptTensor& ln_weight_hh,
                                const OptTensor& keep, const OptTensor& recurrent_mask,
                                bool reverse, bool save, double eps) {
  TORCH_CHECK(a.dim() == 3 && a.is_contiguous(), "gru_forward: a must be contiguous (T, B, 3H)");
  const int64_t steps = a.size(0), batch = a.size(1), G = a.size(2), H = G / 3;
  const int64_t slots = save ? steps : 1;
  const bool ln = ln_weight_hh.has_value();
  Tensor hs = a.new_empty({steps, batch, H});
  Tensor gates = a.new_empty({slots, batch, G});
  Tensor q = a.new_empty({slots, batch, G});
  Tensor h_in = maybe_empty(recurrent_mask.has_value(), a, {slots, batch, H});
  Tensor raw = maybe_empty(ln, a, {slots, batch, G});
  Tensor mean = maybe_empty(ln, a, {slots, batch, 1});
  Tensor rstd = maybe_empty(ln, a, {slots, batch, 1});
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_gru_forward", [&] {
    gru_forward_loop<scalar_t>(a, weight_hh, h0, bias_hn, ln_weight_hh, keep, recurrent_mask,
                               reverse, save, eps, hs, gates, q, h_in, raw, mean, rstd);
  });
  return {hs, gates, q, h_in, raw, mean, rstd};
}

template <typename T>
void gru_backward_loop(const Tensor& d_hs, const Tensor& weight_hh, const Tensor& h0,
                       const OptTensor& ln_weight_hh, const OptTensor& keep,
                       const OptTensor& recurrent_mask, const Tensor& hs, const Tensor& gates,
                       const Tensor& q, const OptTensor& raw, const OptTensor& mean,
                       const OptTensor& rstd, bool reverse, const Tensor& d_a,
                       const Tensor& d_raw, Tensor& dh, Accumulator& d_bias_hn,
                       Accumulator& d_ln) {
  const int64_t steps = gates.size(0), batch = gates.size(1), G = gates.size(2), H = G / 3;
  const T* ln_g = ptr_or_null<T>(ln_weight_hh);
  const T* raw_p = ptr_or_null<T>(raw);
  const T* mu = ptr_or_null<T>(mean);
  const T* rs = ptr_or_null<T>(rstd);
  const Tensor h_init = h0.contiguous();
  Tensor dh_next = dh.new_empty({batch, H});
  Tensor through_w = recurrent_mask.has_value() ? dh.new_empty({batch, H}) : Tensor();
  for (int64_t n = steps - 1; n >= 0; --n) {
    const int64_t t = visited(n, steps, reverse);
    const int64_t before = visited_before(n, steps, reverse);
    const T* g_t = step_in<T>(gates, t);
    const T* q_t = step_in<T>(q, t);
    const T* hp = before < 0 ? h_init.const_data_ptr<T>()
                             : step_in<T>(hs, before);
    const T* ext = step_in<T>(d_hs, before);
    const T* dhp = dh.const_data_ptr<T>();
    T* da_t = step_out<T>(d_a, t);
    T* draw_t = step_out<T>(d_raw, t);
    T* dh_base = dh_next.data_ptr<T>();
    const Keep<T> kp = keep_at<T>(keep, t);

    at::parallel_for(0, batch, grain_for(G), [&](int64_t begin, int64_t end) {
      // δq = [δa_r; δa_z; δa_n ⊙ r], the gradient of the recurrent pre-activations: with
      // LN only a row's scratch (its LN backward gives d_raw), else d_raw itself.
      std::vector<T> tmp(ln_g ? H + G : H);
      T* dhn = tmp.data();  // δĥ_t = (1 - k) δh_t
      for (int64_t b = begin; b < end; ++b) {
        const T* gb = g_t + b * G;
        const T* qb = q_t + b * G;
        const T* hpb = hp + b * H;
        const T* dhb = dhp + b * H;
        T* dab = da_t + b * G;
        T* dqb = ln_g ? dhn + H : draw_t + b * G;
        keep_release(kp, b, dhb, H, dhn);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T r = gb[j], z = gb[H + j], nn = gb[2 * H + j];
          const T dan = (dhn[j] - dhn[j] * z) * (T(1) - nn * nn);
          dab[2 * H + j] = dan;
          dab[H + j] = (hpb[j] - nn) * dhn[j] * (T(1) - z) * z;
          dab[j] = dan * qb[2 * H + j] * (T(1) - r) * r;
          dqb[j] = dab[j];
          dqb[H + j] = dab[H + j];
          dqb[2 * H + j] = dan * r;
        }
        if (d_bias_hn.rows.defined()) {  // b_hn is the LN's shift on the n block, or added
          double* acc = d_bias_hn.row(b);
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) acc[j] += static_cast<double>(dqb[2 * H + j]);
        }
        if (ln_g) {
          const int64_t s = t * batch + b;
          row_layer_norm_backward(dqb, raw_p + s * G, ln_g, mu[s], rs[s], G, draw_t + b * G,
                                  d_ln.row(b));
        }
        T* out = dh_base + b * H;
        const T* eb = ext ? ext + b * H : nullptr;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) out[j] = (eb ? eb[j] : T(0)) + dhn[j] * gb[H + j];
        keep_accumulate(kp, b, dhb, H, out);
      }
    });
    add_recurrent_grad(dh_next, d_raw[t], weight_hh, recurrent_mask, through_w);
    std::swap(dh, dh_next);
  }
}

// Returns δa (the gradient of a), δ of the recurrent product before the LN (δq without
// it), δh_0, and the gradients of b_hn and of the LN gain (undefined where off).
std::vector<Tensor> gru_backward(const Tensor& d_hs, const Tensor& weight_hh, const Tensor& h0,
                                 const OptTensor& ln_weight_hh, const OptTensor& keep,
                                 const OptTensor& recurrent_mask, const Tensor& hs,
                                 const Tensor& gates, const Tensor& q, const OptTensor& raw,
                                 const OptTensor& mean, const OptTensor& rstd, bool reverse,
                                 bool has_bias_hn) {
  TORCH_CHECK(d_hs.is_contiguous(), "gru_backward: the output gradient must be contiguous");
  const int64_t steps = gates.size(0), batch = gates.size(1), G = gates.size(2), H = G / 3;
  Tensor d_a = gates.new_empty({steps, batch, G});
  Tensor d_raw = gates.new_empty({steps, batch, G});
  Tensor dh = d_hs[reverse ? 0 : steps - 1].clone();
  Accumulator d_bias_hn(has_bias_hn, batch, H, gates);
  Accumulator d_ln(ln_weight_hh.has_value(), batch, G, gates);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "rnnkit_gru_backward", [&] {
    gru_backward_loop<scalar_t>(d_hs, weight_hh, h0, ln_weight_hh, keep, recurrent_mask, hs,
                                gates, q, raw, mean, rstd, reverse, d_a, d_raw, dh, d_bias_hn,
                                d_ln);
  });
  return {d_a, d_raw, dh, d_bias_hn.total(gates), d_ln.total(gates)};
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY(rnnkit_native, m) {
  m.def(
      "lstm_forward(Tensor a, Tensor weight_hh, Tensor h0, Tensor c0, Tensor? ln_weight_hh, "
      "Tensor? ln_weight_c, Tensor? ln_bias_c, Tensor? peephole, Tensor? keep_h, "
      "Tensor? keep_c, Tensor? recurrent_mask, bool reverse, bool save, float eps) -> Tensor[]",
      &rnnkit_native::lstm_forward);
  m.def(
      "lstm_backward(Tensor d_hs, Tensor d_cs, Tensor weight_hh, Tensor c0, "
      "Tensor? ln_weight_hh, Tensor? ln_weight_c, Tensor? peephole, Tensor? keep_h, "
      "Tensor? keep_c, Tensor? recurrent_mask, Tensor gates, Tensor tau, Tensor c_new, "
      "Tensor cs, Tensor? raw, Tensor? mean_h, Tensor? rstd_h, Tensor? mean_c, "
      "Tensor? rstd_c, bool reverse) -> Tensor[]",
      &rnnkit_native::lstm_backward);
  m.def(
      "gru_forward(Tensor a, Tensor weight_hh, Tensor h0, Tensor? bias_hn, "
      "Tensor? ln_weight_hh, Tensor? keep, Tensor? recurrent_mask, bool reverse, bool save, "
      "float eps) -> Tensor[]",
      &rnnkit_native::gru_forward);
  m.def(
      "gru_backward(Tensor d_hs, Tensor weight_hh, Tensor h0, Tensor? ln_weight_hh, "
      "Tensor? keep, Tensor? recurrent_mask, Tensor hs, Tensor gates, Tensor q, Tensor? raw, "
      "Tensor? mean, Tensor? rstd, bool reverse, bool has_bias_hn) -> Tensor[]",
      &rnnkit_native::gru_backward);
}
