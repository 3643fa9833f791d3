#pragma once
// The H100 compute and network figures the projections use when no measured GPU profile or
// NCCL table is given (docs/scaling.md, "Projections", says where each number comes from).
//   Compute: an OpProfile at the TinyLlama-1.1B shape (B = 8, T = 2048), built from the
//     per-op times `llmpi_gpu_bench --profile` measured on one H100 80GB HBM3 on 2026-11-25
//     (docs/performance.md, "Latest"): each op kind's measured total is spread over the
//     model's ops of that kind in proportion to their FLOPs (matrix products, attention) or
//     bytes (the rest), so every op runs at the rate its kind achieved. Ops the table does not
//     list (loss, embedding, zero_grads, the gradient norm) take their bytes at the measured
//     3,010 GB/s copy bandwidth. The step model then scales each op to another shape by its
//     work (op_profile.h) — the same per-kind rates at 7B or 70B widths.
//   Network: 8 GPUs per node on NVLink 4 (900 GB/s per GPU in both directions together,
//     450 GB/s each way) and one 400 Gb/s InfiniBand NIC per GPU (50 GB/s), with the fraction
//     of those NCCL reaches and a per-step latency as stated in h100_cluster().
#include "bench/perfmodel/comm_model.h"
#include "bench/perfmodel/op_profile.h"

namespace llmpi::perf {

// TinyLlama-1.1B (22 layers, width 2048, 32:4 heads, SwiGLU 5632, vocab 32000).
ModelConfig tinyllama_shape();

// The profile described above (device "cuda").
OpProfile h100_reference_profile();

// NCCL on NVLink inside a node, InfiniBand NDR between nodes; `nvlink_fraction` and
// `ib_fraction` of the links' one-way bandwidth, α per algorithm step.
Cluster h100_cluster(double nvlink_fraction = 0.8, double ib_fraction = 0.85,
                     double nvlink_alpha_s = 5e-6, double ib_alpha_s = 10e-6);

constexpr double kH100Bf16Dense = 989.4e12;  // FLOP/s, SXM, dense bf16

}  // namespace llmpi::perf
