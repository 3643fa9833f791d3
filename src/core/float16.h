#pragma once
// 16-bit floating-point formats held as uint16_t on the host: bfloat16 (1-8-7, f32's exponent)
// and IEEE half (1-5-10). Conversions from f32 round to nearest, ties to even; NaN stays a
// quiet NaN (sign kept); f16 overflows to ±inf and keeps subnormals. Conversions to f32 are
// exact. Used by the host backend's bf16 copies and by safetensors import/export.
#include <cstdint>

namespace llmpi {

uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);

}  // namespace llmpi
