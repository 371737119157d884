// rnnkit's native scans on the CPU: the linear recurrence h_t = a_t ⊙ h_{t-1} + b_t and
// its backward, and the same fused with the gates of the minimal cells (minGRU, minLSTM).
//
// The scan engine's recurrence (rnnkit/engines/linear.py has the equations and the pure
// torch forms they are tested against). Each of the N = B·H columns is an independent
// recurrence, so the loop is sequential over time but vectorised and threaded over
// columns: a block of columns keeps its state in a small local array (L1) while the
// loop streams its inputs and the output through memory once, forward; the backward is
// one more stream pass, T-1 down to 0:
//
//   g_t = δh_t + a_{t+1} ⊙ g_{t+1},   δa_t = g_t ⊙ h_{t-1},   δb_t = g_t,
//
// and the initial state's gradient a_0 ⊙ g_0 (h_{-1} being the initial state; mirrored
// for the reverse direction, which visits T-1 down to 0).
//
// The fused scans read the gate pre-activations k = W_ih x + b_ih instead of a and b,
// compute a_t, b_t on the fly (and again in the backward, rather than store them), skip
// padded steps (a = 1, b = 0: the state is kept) and write δk directly: one pass over
// k and the states each way, where the unfused path makes a dozen element-wise passes.
// Registered into the same library as recurrence.cpp (one build; see native/__init__.py).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "activations.h"

namespace rnnkit_native {
namespace {

using at::Tensor;

// The n-th visited step (a direction visits 0..T-1, or T-1..0 in reverse).
inline int64_t step_at(int64_t n, int64_t steps, bool reverse) {
  return reverse ? steps - 1 - n : n;
}

// Columns per task: enough values per thread (columns × steps) to pay for the fork.
// Each thread takes one contiguous range of columns and walks time over it, so every
// step reads and writes one contiguous span (what the hardware prefetcher follows best),
// and the range's state stays in a local buffer.
inline int64_t column_grain(int64_t steps) {
  return std::max<int64_t>(64, 65536 / std::max<int64_t>(1, steps));
}

template <typename T>
void forward_loop(const T* a, const T* b, const T* h0, T* hs, int64_t steps, int64_t width,
                  bool reverse) {
  at::parallel_for(0, width, column_grain(steps), [&](int64_t begin, int64_t end) {
    const int64_t w = end - begin;
    std::vector<T> state(h0 + begin, h0 + end);
    T* h = state.data();
    for (int64_t n = 0; n < steps; ++n) {
      const int64_t off = step_at(n, steps, reverse) * width + begin;
      const T* at = a + off;
      const T* bt = b + off;
      T* out = hs + off;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        h[j] = at[j] * h[j] + bt[j];
        out[j] = h[j];
      }
    }
  });
}

template <typename T>
void backward_loop(const T* d_hs, const T* a, const T* hs, const T* h0, T* d_a, T* d_b,
                   T* d_h0, int64_t steps, int64_t width, bool reverse) {
  at::parallel_for(0, width, column_grain(steps), [&](int64_t begin, int64_t end) {
    const int64_t w = end - begin;
    std::vector<T> carry(w, T(0));
    T* g = carry.data();
    for (int64_t n = steps - 1; n >= 0; --n) {
      const int64_t off = step_at(n, steps, reverse) * width + begin;
      // a of the step visited after this one (its weight on this step's state), if any
      const T* a_next = n + 1 < steps ? a + step_at(n + 1, steps, reverse) * width + begin
                                      : nullptr;
      const T* h_prev = n > 0 ? hs + step_at(n - 1, steps, reverse) * width + begin : h0 + begin;
      const T* dh = d_hs + off;
      T* da = d_a + off;
      T* db = d_b + off;
      if (a_next) {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) g[j] = a_next[j] * g[j] + dh[j];
      } else {
        std::copy(dh, dh + w, g);
      }
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        db[j] = g[j];
        da[j] = g[j] * h_prev[j];
      }
    }
    const T* a_first = a + step_at(0, steps, reverse) * width + begin;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) d_h0[begin + j] = a_first[j] * g[j];
  });
}

void check_inputs(const char* name, const Tensor& a, const Tensor& other, const Tensor& h0) {
  TORCH_CHECK(a.dim() >= 2 && a.is_contiguous() && other.is_contiguous() && h0.is_contiguous(),
              name, ": expected contiguous (T, ...) tensors and a contiguous h0");
  TORCH_CHECK(a.sizes() == other.sizes(), name, ": expected tensors of the same shape, got ",
              a.sizes(), " and ", other.sizes());
  TORCH_CHECK(h0.sizes() == a.sizes().slice(1), name, ": expected h0 of shape ",
              a.sizes().slice(1), ", got ", h0.sizes());
  TORCH_CHECK(a.scalar_type() == other.scalar_type() && a.scalar_type() == h0.scalar_type(),
              name, ": expected one dtype");
}

Tensor linear_scan_forward(const Tensor& a, const Tensor& b, const Tensor& h0, bool reverse) {
  check_inputs("linear_scan_forward", a, b, h0);
  Tensor hs = at::empty_like(a);
  const int64_t steps = a.size(0), width = h0.numel();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_linear_scan_forward", [&] {
    forward_loop<scalar_t>(a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(),
                           h0.const_data_ptr<scalar_t>(), hs.data_ptr<scalar_t>(), steps, width,
                           reverse);
  });
  return hs;
}

// Returns δa, δb and δh_0.
std::vector<Tensor> linear_scan_backward(const Tensor& d_hs, const Tensor& a, const Tensor& hs,
                                         const Tensor& h0, bool reverse) {
  check_inputs("linear_scan_backward", a, d_hs, h0);
  TORCH_CHECK(hs.sizes() == a.sizes() && hs.is_contiguous(),
              "linear_scan_backward: expected contiguous states of a's shape");
  Tensor d_a = at::empty_like(a), d_b = at::empty_like(a), d_h0 = at::empty_like(h0);
  const int64_t steps = a.size(0), width = h0.numel();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_linear_scan_backward", [&] {
    backward_loop<scalar_t>(d_hs.const_data_ptr<scalar_t>(), a.const_data_ptr<scalar_t>(),
                            hs.const_data_ptr<scalar_t>(), h0.const_data_ptr<scalar_t>(),
                            d_a.data_ptr<scalar_t>(), d_b.data_ptr<scalar_t>(),
                            d_h0.data_ptr<scalar_t>(), steps, width, reverse);
  });
  return {d_a, d_b, d_h0};
}

// ---------------------------------------------------------------------------------
// The minimal cells, fused. Gate order as in rnnkit/cells/mingru.py: minGRU k = [z | h̃],
// minLSTM k = [i | f | h̃]. Each unit's weights (a on h_{t-1}, w on h̃) come from its
// pre-activations through exp(-|x|) (never overflows), as the Python steps compute them:
//   minGRU:  z = σ(k_z), a = 1 - z = σ(-k_z)
//   minLSTM: f' = f / (f + i) = (1 + e^{-k_i}) / (2 + e^{-k_i} + e^{-k_f}), i' = 1 - f',
//            both numerator and denominator scaled by e^{-m}, m = max(-k_f, -k_i, 0), so
//            every exponential is at most 1 and the denominator at least 1.

enum class Family { kMinGRU, kMinLSTM };

Family family_of(c10::string_view name) {
  if (name == "mingru") return Family::kMinGRU;
  TORCH_CHECK(name == "minlstm", "minimal scan: family must be 'mingru' or 'minlstm', got ",
              std::string(name));
  return Family::kMinLSTM;
}

template <typename T>
inline T stable_sigmoid(T x) {
  const T e = Act<T>::exp(-std::abs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// minGRU: a = σ(-k_z) (the weight of h_{t-1}) and z = σ(k_z) (the weight of h̃).
template <typename T>
inline void mingru_weights(T kz, T& a, T& z) {
  const T e = Act<T>::exp(-std::abs(kz));
  const T r = T(1) / (T(1) + e);
  const bool positive = kz >= T(0);
  z = positive ? r : e * r;
  a = positive ? e * r : r;
}

// minLSTM: the normalised forget and input gates f', i' (see above).
template <typename T>
inline void minlstm_weights(T ki, T kf, T& f, T& i) {
  const T u = -kf, v = -ki;
  const T m = std::max(std::max(u, v), T(0));
  const T e0 = Act<T>::exp(-m), eu = Act<T>::exp(u - m), ev = Act<T>::exp(v - m);
  const T inv = T(1) / (T(2) * e0 + eu + ev);
  f = (e0 + ev) * inv;
  i = (e0 + eu) * inv;
}

// Rows (sequences) per task: enough values per thread to pay for the fork.
inline int64_t row_grain(int64_t steps, int64_t width) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, steps * width));
}

struct MinimalShape {
  int64_t steps, batch, H, G;
  int64_t k_row(int64_t t, int64_t b) const { return (t * batch + b) * G * H; }
  int64_t h_row(int64_t t, int64_t b) const { return (t * batch + b) * H; }
};

template <typename T>
void minimal_forward_loop(Family family, const T* k, const T* h0, const bool* valid, T* hs,
                          const MinimalShape& s, bool reverse) {
  const int64_t H = s.H;
  // Each thread takes a range of sequences (rows) and walks time over all of them: one
  // contiguous span of k and of the states per step, the rows' states in a local buffer.
  at::parallel_for(0, s.batch, row_grain(s.steps, H), [&](int64_t begin, int64_t end) {
    std::vector<T> state(h0 + begin * H, h0 + end * H);
    for (int64_t n = 0; n < s.steps; ++n) {
      const int64_t t = step_at(n, s.steps, reverse);
      for (int64_t b = begin; b < end; ++b) {
        T* h = state.data() + (b - begin) * H;
        T* out = hs + s.h_row(t, b);
        if (valid && !valid[t * s.batch + b]) {  // a padded step keeps the state
          std::copy(h, h + H, out);
          continue;
        }
        const T* kr = k + s.k_row(t, b);
        if (family == Family::kMinGRU) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            T a, z;
            mingru_weights(kr[j], a, z);
            h[j] = a * h[j] + z * kr[H + j];
            out[j] = h[j];
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            T f, i;
            minlstm_weights(kr[j], kr[H + j], f, i);
            h[j] = f * h[j] + i * kr[2 * H + j];
            out[j] = h[j];
          }
        }
      }
    }
  });
}

// One step of the backward: δk from g (already δh_t + a_{t+1} g_{t+1}) and h_{t-1}; the
// step's a goes to a_next, for the step visited before it.
template <typename T>
inline void minimal_step_grads(Family family, const T* kr, const T* hp, const T* g, int64_t H,
                               T* dk, T* a_next) {
  if (family == Family::kMinGRU) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T a, z;
      mingru_weights(kr[j], a, z);
      dk[j] = g[j] * (kr[H + j] - hp[j]) * z * a;  // δz ⊙ σ'(k_z), σ' = z (1 - z)
      dk[H + j] = g[j] * z;                         // δh̃
      a_next[j] = a;
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T f, i;
      minlstm_weights(kr[j], kr[H + j], f, i);
      // f' = σ(d), d = log σ(k_f) - log σ(k_i): δd = δf' f' i', ∂d/∂k_f = σ(-k_f),
      // ∂d/∂k_i = -σ(-k_i); δf' = g (h_{t-1} - h̃) because i' = 1 - f'.
      const T dd = g[j] * (hp[j] - kr[2 * H + j]) * f * i;
      dk[j] = -dd * stable_sigmoid(-kr[j]);
      dk[H + j] = dd * stable_sigmoid(-kr[H + j]);
      dk[2 * H + j] = g[j] * i;
      a_next[j] = f;
    }
  }
}

template <typename T>
void minimal_backward_loop(Family family, const T* d_hs, const T* k, const T* hs, const T* h0,
                           const bool* valid, T* d_k, T* d_h0, const MinimalShape& s,
                           bool reverse) {
  const int64_t H = s.H, G = s.G;
  at::parallel_for(0, s.batch, row_grain(s.steps, H), [&](int64_t begin, int64_t end) {
    const int64_t rows = end - begin;
    std::vector<T> carry(rows * H, T(0)), weights(rows * H, T(0));  // g_{t+1}, a_{t+1}
    for (int64_t n = s.steps - 1; n >= 0; --n) {
      const int64_t t = step_at(n, s.steps, reverse);
      const int64_t before = n > 0 ? step_at(n - 1, s.steps, reverse) : -1;
      for (int64_t b = begin; b < end; ++b) {
        T* g = carry.data() + (b - begin) * H;
        T* a_next = weights.data() + (b - begin) * H;
        const T* dh = d_hs + s.h_row(t, b);
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) g[j] = a_next[j] * g[j] + dh[j];
        T* dk = d_k + s.k_row(t, b);
        if (valid && !valid[t * s.batch + b]) {  // a = 1, b = 0: nothing reaches k
          std::fill(dk, dk + G * H, T(0));
          std::fill(a_next, a_next + H, T(1));
          continue;
        }
        const T* hp = before >= 0 ? hs + s.h_row(before, b) : h0 + b * H;
        minimal_step_grads(family, k + s.k_row(t, b), hp, g, H, dk, a_next);
      }
    }
    for (int64_t b = begin; b < end; ++b) {
      const T* g = carry.data() + (b - begin) * H;
      const T* a_first = weights.data() + (b - begin) * H;
      T* dh0 = d_h0 + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh0[j] = a_first[j] * g[j];
    }
  });
}

const bool* valid_ptr(const std::optional<Tensor>& valid, const MinimalShape& s) {
  if (!valid.has_value()) return nullptr;
  TORCH_CHECK(valid->scalar_type() == at::kBool && valid->is_contiguous() &&
                  valid->sizes() == at::IntArrayRef({s.steps, s.batch}),
              "minimal scan: valid must be a contiguous (T, B) bool tensor");
  return valid->const_data_ptr<bool>();
}

MinimalShape minimal_shape(const char* name, const Tensor& k, const Tensor& h0, Family family) {
  const int64_t G = family == Family::kMinGRU ? 2 : 3;
  TORCH_CHECK(k.dim() == 3 && k.is_contiguous() && h0.is_contiguous() && h0.dim() == 2, name,
              ": expected contiguous k (T, B, G·H) and h0 (B, H)");
  TORCH_CHECK(k.size(1) == h0.size(0) && k.size(2) == G * h0.size(1) &&
                  k.scalar_type() == h0.scalar_type(),
              name, ": expected k of shape (T, B, ", G, "·H) for h0 ", h0.sizes(), ", got ",
              k.sizes());
  return {k.size(0), k.size(1), h0.size(1), G};
}

Tensor minimal_scan_forward(const Tensor& k, const Tensor& h0,
                            const std::optional<Tensor>& valid, bool reverse,
                            c10::string_view family_name) {
  const Family family = family_of(family_name);
  const MinimalShape s = minimal_shape("minimal_scan_forward", k, h0, family);
  Tensor hs = k.new_empty({s.steps, s.batch, s.H});
  const bool* v = valid_ptr(valid, s);
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "rnnkit_minimal_scan_forward", [&] {
    minimal_forward_loop<scalar_t>(family, k.const_data_ptr<scalar_t>(),
                                   h0.const_data_ptr<scalar_t>(), v, hs.data_ptr<scalar_t>(), s,
                                   reverse);
  });
  return hs;
}

// Returns δk and δh_0.
std::vector<Tensor> minimal_scan_backward(const Tensor& d_hs, const Tensor& k, const Tensor& hs,
                                          const Tensor& h0, const std::optional<Tensor>& valid,
                                          bool reverse, c10::string_view family_name) {
  const Family family = family_of(family_name);
  const MinimalShape s = minimal_shape("minimal_scan_backward", k, h0, family);
  TORCH_CHECK(d_hs.is_contiguous() && hs.is_contiguous() && d_hs.sizes() == hs.sizes() &&
                  hs.sizes() == at::IntArrayRef({s.steps, s.batch, s.H}),
              "minimal_scan_backward: expected contiguous (T, B, H) states and gradients");
  Tensor d_k = at::empty_like(k), d_h0 = at::empty_like(h0);
  const bool* v = valid_ptr(valid, s);
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "rnnkit_minimal_scan_backward", [&] {
    minimal_backward_loop<scalar_t>(family, d_hs.const_data_ptr<scalar_t>(),
                                    k.const_data_ptr<scalar_t>(), hs.const_data_ptr<scalar_t>(),
                                    h0.const_data_ptr<scalar_t>(), v, d_k.data_ptr<scalar_t>(),
                                    d_h0.data_ptr<scalar_t>(), s, reverse);
  });
  return {d_k, d_h0};
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def("linear_scan_forward(Tensor a, Tensor b, Tensor h0, bool reverse) -> Tensor",
        &rnnkit_native::linear_scan_forward);
  m.def(
      "linear_scan_backward(Tensor d_hs, Tensor a, Tensor hs, Tensor h0, bool reverse) "
      "-> Tensor[]",
      &rnnkit_native::linear_scan_backward);
  m.def(
      "minimal_scan_forward(Tensor k, Tensor h0, Tensor? valid, bool reverse, str family) "
      "-> Tensor",
      &rnnkit_native::minimal_scan_forward);
  m.def(
      "minimal_scan_backward(Tensor d_hs, Tensor k, Tensor hs, Tensor h0, Tensor? valid, "
      "bool reverse, str family) -> Tensor[]",
      &rnnkit_native::minimal_scan_backward);
}
