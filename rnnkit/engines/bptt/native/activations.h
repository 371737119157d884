#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnkit_native {

// Activations shared by rnnkit's native kernels (recurrence.cpp, scan.cpp).
//
// fp64 uses libm (gradcheck runs in fp64); fp32 uses a branch-free exp
// (Cephes' expf: Cody-Waite range reduction, degree-6 polynomial, about 1 ulp) that
// the compiler vectorises, with sigmoid and tanh (Cephes' tanhf) written through it.

template <typename T>
struct Act;

template <>
struct Act<double> {
  static inline double exp(double x) { return std::exp(x); }
  static inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static inline double tanh(double x) { return std::tanh(x); }
};

template <>
struct Act<float> {
  static inline float exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    const float n = std::floor(x * 1.44269504088896341f + 0.5f);
    x = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * x + 1.3981999507e-3f;
    p = p * x + 8.3334519073e-3f;
    p = p * x + 4.1665795894e-2f;
    p = p * x + 1.6666665459e-1f;
    p = p * x + 5.0000001201e-1f;
    p = p * x * x + x + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
  }
  static inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }
  // Cephes' tanhf: an odd polynomial near 0 (where 1 - 2/(e^{2x} + 1) would cancel),
  // the exp form elsewhere; both computed, one selected, so the loop stays vectorised.
  static inline float tanh(float x) {
    const float s = x * x;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    const float near_zero = p * s * x + x;
    const float away = 1.0f - 2.0f / (exp(2.0f * x) + 1.0f);
    return std::abs(x) < 0.625f ? near_zero : away;
  }
};

}  // namespace rnnkit_native
