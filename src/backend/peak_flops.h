#pragma once
// The dense peak FLOP/s of a GPU for the compute dtype llmpi trains in (bf16 tensor cores),
// by the device name CUDA reports — the denominator of MFU (model FLOPs utilization):
//   MFU = tokens/s · model_flops_per_token (model/model_flops.h) / (ranks · peak).
// Vendor data-sheet numbers, dense (no 2:4 sparsity):
//   H100 SXM / H100 HBM3, H200, GH200   989.4e12      H100 PCIe, H100 NVL   756e12 / 835e12
//   A100 (SXM or PCIe)                   312e12
// 0 for any other name (a GPU outside the table, the host): MFU is then not measured.
#include <string_view>

namespace llmpi {

double gpu_peak_bf16_flops(std::string_view device_name);

}  // namespace llmpi
