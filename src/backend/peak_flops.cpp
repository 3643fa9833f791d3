// The table of gpu_peak_bf16_flops (peak_flops.h).
#include "backend/peak_flops.h"

namespace llmpi {

double gpu_peak_bf16_flops(std::string_view name) {
  auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
  if (has("H200") || has("GH200")) return 989.4e12;
  if (has("H100")) {
    if (has("PCIe")) return 756e12;
    if (has("NVL")) return 835e12;
    return 989.4e12;  // SXM5, "H100 80GB HBM3"
  }
  if (has("A100")) return 312e12;
  return 0.0;
}

}  // namespace llmpi
