#pragma once
// Memory per rank estimated from the config alone, before anything is allocated, so that a
// model that cannot fit (n_layer = 2,000,000, a huge d_model, vocab_size = 4e9) is refused
// at start-up with the keys that drive it instead of allocating for minutes and ending in
// std::bad_alloc. The start-up memory table (ParallelEngine::memory_table) reports the real
// figures of a run that fits.
//   parameters P: the embedding/head tensors + n_layer × one layer's (model/param_layout.h),
//     counted in closed form (doubles: no overflow for any config that validates);
//   per rank (balanced split): P / (tp · pp) parameters and gradients, the gradients 1/dp
//     under ZeRO 2 and 3, the parameters 1/dp under ZeRO 3; AdamW's two moments 1/dp under
//     ZeRO ≥ 1; all in the master dtype; with LoRA the frozen base alone (compute dtype, its
//     linear maps in NF4 for QLoRA), replicated over dp;
//   activations, a lower bound: the logits of one micro-batch and their gradient (2·B·T·V/tp)
//     and each local layer's input (B·T·C·n_layer/pp), f32.
// Only a clear excess is refused on the host: that estimate leaves out workspace and most
// activations. On a device (CUDA) the estimate is complete, against cudaMemGetInfo's free
// bytes (estimate_device_memory below): every activation buffer a micro-batch keeps
// (activation_bytes in closed form) times the micro-batches in flight, the backward's
// scratch, ZeRO's gathered units, and a fixed reserve for cuBLASLt/cuDNN workspaces and NCCL's
// buffers. The end of a CUDA run prints it beside the measured peak (src/train/trainer.cpp).
#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "core/layout.h"

namespace llmpi {

class Topology;

struct MemoryEstimate {
  double params = 0, grads = 0, optimizer = 0, activations = 0;  // bytes per rank
  double total_params = 0;      // parameters of the whole model
  double layer_params = 0;      // of one layer
  double embedding_params = 0;  // of the embedding, positions, final norm and head
  double workspace = 0;          // device: backward scratch, gathered units, library reserve
  double total() const { return params + grads + optimizer + activations + workspace; }
};

MemoryEstimate estimate_memory(const Config& cfg, const Layout& layout);

// Bytes of the activation buffers one micro-batch of B × T keeps on a rank of this layout
// holding `layers` blocks (plus the head when `head`, the positions when `embedding`), in
// `dtype`: model/transformer.h's activation_bytes without allocating anything.
double activation_bytes_estimate(const ModelConfig& m, const Layout& lay, int64_t B, int64_t T,
                                 DType dtype, int64_t layers, bool head, bool embedding);

// The device estimate of a rank of the busiest stage (the most layers, with the head), in
// the CUDA engine's dtypes (f32 master state, bf16 compute): parameters (with their bf16
// compute copy; LoRA's frozen base in bf16 only), gradients and moments as estimate_memory; activations = one micro-batch's
// × the micro-batches in flight (1 without pipelining, min(micro_batches, pp) with it), plus
// the shared block of recomputation; workspace = the backward's scratch + (ZeRO 2/3 units)
// two gathered layers + kDeviceReserveBytes (CUDA context slack, cuBLASLt/cuDNN workspaces,
// NCCL buffers). bench/perfmodel/memory_model.h models the same for layout search.
inline constexpr double kDeviceReserveBytes = 768.0 * 1024 * 1024;
MemoryEstimate estimate_device_memory(const Config& cfg, const Layout& layout);

// Bytes the host can still give this process: MemAvailable (/proc/meminfo) shared by the
// `ranks_on_node` ranks of the node; -1 when unknown.
double host_bytes_available(int ranks_on_node);

// Throws UserError when the estimate exceeds `available` bytes per rank (where = what that
// is: "of host memory per rank (...)"): the estimate by kind, the memory available and the
// config keys that drive it. available < 0: no check.
void check_memory_estimate(const Config& cfg, const Layout& layout, double available,
                           const std::string& where);
void check_memory_estimate(const Config& cfg, const Layout& layout, const MemoryEstimate& e,
                           double available, const std::string& where);

// Collective over the topology's world: the estimate (host: estimate_memory; a device:
// estimate_device_memory) against the smallest memory available on any rank (host:
// MemAvailable per rank of the node; device: Backend::free_bytes), so every rank decides
// alike; UserError when it does not fit. Returns the estimate (for the end-of-run line).
MemoryEstimate check_memory_fits(const Config& cfg, const Topology& topo, const Backend& be);

}  // namespace llmpi
