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
//     ZeRO ≥ 1; all in the master dtype;
//   activations, a lower bound: the logits of one micro-batch and their gradient (2·B·T·V/tp)
//     and each local layer's input (B·T·C·n_layer/pp), f32.
// Only a clear excess is refused: the estimate leaves out workspace and most activations.
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
  double total() const { return params + grads + optimizer + activations; }
};

MemoryEstimate estimate_memory(const Config& cfg, const Layout& layout);

// Bytes the host can still give this process: MemAvailable (/proc/meminfo) shared by the
// `ranks_on_node` ranks of the node; -1 when unknown.
double host_bytes_available(int ranks_on_node);

// Throws UserError when the estimate exceeds `available` bytes per rank (where = what that
// is: "of host memory per rank (...)"): the estimate by kind, the memory available and the
// config keys that drive it. available < 0: no check.
void check_memory_estimate(const Config& cfg, const Layout& layout, double available,
                           const std::string& where);

// Collective over the topology's world: the host backend's check with the smallest memory
// available on any rank, so every rank decides alike. Device backends: no check here
// (their allocations fail with the device's own message).
void check_memory_fits(const Config& cfg, const Topology& topo, const Backend& be);

}  // namespace llmpi
