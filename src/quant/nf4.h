#pragma once
// NF4: the 4-bit NormalFloat code of QLoRA (Dettmers et al., 2023) for frozen base weights.
// First level: the weights are cut in blocks of 64 (kNf4Block; the last may be shorter);
// block b has absmax s_b = max |w|, and w_i is stored as the index (0..15) of the level of
// kNf4Levels nearest to w_i / s_b. Two codes per byte: element 2j in the high nibble of byte
// j, element 2j + 1 in the low one (an odd count pads a zero-level code).
// Second level ("double quantisation"): the block scales s_b are stored in 8 bits. With
// offset o = mean_b s_b, the scales are cut in groups of 256 (kNf4ScaleGroup); group g has
// c_g = max |s_b − o| (f32) and block b stores the int8 k_b = round(127 (s_b − o) / c_g).
// Dequantised: ŝ_b = o + k_b c_g / 127,  ŵ_i = kNf4Levels[code_i] · ŝ_b.
// Storage: 0.5 byte per weight + 1 byte per 64 weights + 4 bytes per 16384 weights + 4.
// Error bound per element: |w − ŵ| ≤ s_b · kNf4MaxHalfGap + c_g / 254 (nearest level, then
// the scale's rounding; |level| ≤ 1).
#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace llmpi {

inline constexpr int64_t kNf4Block = 64;
inline constexpr int64_t kNf4ScaleGroup = 256;

// The 16 levels, ascending: the normal quantiles of the QLoRA paper's appendix (exactly
// representable zero at index 7, ±1 at the ends).
inline constexpr std::array<float, 16> kNf4Levels = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f};
inline constexpr uint8_t kNf4Zero = 7;
// Half the largest gap between neighbouring levels (between −1 and the next): the most a
// normalised weight moves when rounded to its nearest level.
inline constexpr double kNf4MaxHalfGap = (1.0 - 0.6961928009986877) / 2;

// Index of the level nearest to x (x in [−1, 1]; a tie goes to the lower level).
uint8_t nf4_code(float x);

// A tensor in NF4 with double-quantised scales (host memory).
struct Nf4Tensor {
  int64_t numel = 0;
  std::vector<uint8_t> codes;        // [ceil(numel / 2)] two 4-bit codes per byte
  std::vector<int8_t> scale_codes;   // [blocks] k_b
  std::vector<float> scale_scales;   // [ceil(blocks / 256)] c_g
  float scale_offset = 0.f;          // o

  int64_t blocks() const { return (numel + kNf4Block - 1) / kNf4Block; }
  int64_t bytes() const;  // storage of all four fields
};

// Quantises w (finite values; InternalError otherwise).
Nf4Tensor nf4_quantize(std::span<const float> w);
// The dequantised block scales ŝ_b.
std::vector<float> nf4_block_scales(const Nf4Tensor& q);
// out[i] = ŵ_i; out has q.numel entries. The reference of Backend::nf4_dequantize.
void nf4_dequantize(const Nf4Tensor& q, std::span<float> out);

}  // namespace llmpi
