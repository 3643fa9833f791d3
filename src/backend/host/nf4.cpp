// NF4 dequantisation on the host backend (backend.h, quant/nf4.h): one element per work
// item; the block scale is recomputed per element in f32 exactly as the reference does, so
// results equal nf4_dequantize's bit for bit (f64 outputs hold the same f32 products).
#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"
#include "quant/nf4.h"

namespace llmpi {

namespace host {

template <class T>
void nf4_dequantize(T* out, const uint8_t* codes, const int8_t* scale_codes,
                    const float* scale_scales, float offset, int64_t n) {
  Kokkos::parallel_for("llmpi::host::nf4_dequantize", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
    const int64_t b = i / kNf4Block;
    const float s = offset + float(scale_codes[b]) * scale_scales[b / kNf4ScaleGroup] / 127.f;
    const uint8_t byte = codes[i / 2];
    const uint8_t c = i % 2 == 0 ? byte >> 4 : byte & 0xF;
    out[i] = static_cast<T>(kNf4Levels[c] * s);
  });
}

}  // namespace host

using namespace host;

void HostBackend::nf4_dequantize(const Tensor& out, const Tensor& codes,
                                 const Tensor& scale_codes, const Tensor& scale_scales,
                                 double scale_offset) {
  const char* op = "nf4_dequantize";
  const int64_t n = out.numel();
  check_host(op, "out", out);
  check_host(op, "codes", codes);
  check_host(op, "scale_codes", scale_codes);
  check_host(op, "scale_scales", scale_scales);
  check_dtype(op, "codes", codes, DType::u8);
  check_dtype(op, "scale_codes", scale_codes, DType::u8);
  check_dtype(op, "scale_scales", scale_scales, DType::f32);
  op_shapes::nf4_dequantize(op, out, codes, scale_codes, scale_scales);
  if (n == 0) return;
  dispatch_float(out.dtype, op, [&](auto tag) {
    using V = decltype(tag);
    host::nf4_dequantize<V>(out.ptr<V>(), codes.ptr<const uint8_t>(),
                            scale_codes.ptr<const int8_t>(), scale_scales.ptr<const float>(),
                            static_cast<float>(scale_offset), n);
  });
}

}  // namespace llmpi
