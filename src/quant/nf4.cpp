// NF4 quantisation and the reference dequantisation (nf4.h).
#include "quant/nf4.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace llmpi {

uint8_t nf4_code(float x) {
  // Levels ascend: the first level whose midpoint with the next is >= x.
  uint8_t k = 0;
  while (k < 15 && x > 0.5f * (kNf4Levels[k] + kNf4Levels[k + 1])) ++k;
  return k;
}

int64_t Nf4Tensor::bytes() const {
  return static_cast<int64_t>(codes.size() + scale_codes.size() +
                              scale_scales.size() * sizeof(float) + sizeof(float));
}

Nf4Tensor nf4_quantize(std::span<const float> w) {
  Nf4Tensor q;
  q.numel = static_cast<int64_t>(w.size());
  const int64_t nb = q.blocks();
  std::vector<float> absmax(static_cast<size_t>(nb), 0.f);
  for (int64_t i = 0; i < q.numel; ++i) {
    const float x = w[static_cast<size_t>(i)];
    LLMPI_CHECK(std::isfinite(x), "nf4_quantize: element ", i, " is ", x);
    float& m = absmax[static_cast<size_t>(i / kNf4Block)];
    m = std::max(m, std::fabs(x));
  }
  q.codes.assign(static_cast<size_t>((q.numel + 1) / 2), 0);
  for (int64_t i = 0; i < q.numel; ++i) {
    const float s = absmax[static_cast<size_t>(i / kNf4Block)];
    const uint8_t c = s > 0.f ? nf4_code(w[static_cast<size_t>(i)] / s) : kNf4Zero;
    q.codes[static_cast<size_t>(i / 2)] |= static_cast<uint8_t>(i % 2 == 0 ? c << 4 : c);
  }
  if (q.numel % 2) q.codes.back() |= kNf4Zero;

  double mean = 0;
  for (float s : absmax) mean += s;
  q.scale_offset = nb ? static_cast<float>(mean / double(nb)) : 0.f;
  const int64_t ng = (nb + kNf4ScaleGroup - 1) / kNf4ScaleGroup;
  q.scale_scales.assign(static_cast<size_t>(ng), 0.f);
  for (int64_t b = 0; b < nb; ++b) {
    float& c = q.scale_scales[static_cast<size_t>(b / kNf4ScaleGroup)];
    c = std::max(c, std::fabs(absmax[static_cast<size_t>(b)] - q.scale_offset));
  }
  q.scale_codes.resize(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    const float c = q.scale_scales[static_cast<size_t>(b / kNf4ScaleGroup)];
    const double k =
        c > 0.f ? std::nearbyint(127.0 * (absmax[static_cast<size_t>(b)] - q.scale_offset) / c)
                : 0.0;
    q.scale_codes[static_cast<size_t>(b)] = static_cast<int8_t>(std::clamp(k, -127.0, 127.0));
  }
  return q;
}

std::vector<float> nf4_block_scales(const Nf4Tensor& q) {
  std::vector<float> s(static_cast<size_t>(q.blocks()));
  for (size_t b = 0; b < s.size(); ++b)
    s[b] = q.scale_offset +
           float(q.scale_codes[b]) * q.scale_scales[b / kNf4ScaleGroup] / 127.f;
  return s;
}

void nf4_dequantize(const Nf4Tensor& q, std::span<float> out) {
  LLMPI_CHECK(static_cast<int64_t>(out.size()) == q.numel, "nf4_dequantize: ", out.size(),
              " outputs for ", q.numel, " elements");
  const std::vector<float> s = nf4_block_scales(q);
  for (int64_t i = 0; i < q.numel; ++i) {
    const uint8_t byte = q.codes[static_cast<size_t>(i / 2)];
    const uint8_t c = i % 2 == 0 ? byte >> 4 : byte & 0xF;
    out[static_cast<size_t>(i)] = kNf4Levels[c] * s[static_cast<size_t>(i / kNf4Block)];
  }
}

}  // namespace llmpi
