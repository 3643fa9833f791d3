#pragma once
// LoRA's frozen base on this rank: the engine's step between tensor parallelism and ZeRO
// (parallel/engine.h). With [lora] rank > 0 every weight of the model is frozen: the base
// lives in a FROZEN ParamStore (model/param_store.h: compute dtype only, no gradients, no
// optimizer state) holding this rank's tp-local slabs of its pipeline chunks — replicated over
// dp, outside ZeRO — and the ZeRO path owns only the adapters (adapter_params), which every
// model of the path binds beside it (make_stage_model).
// The base's values always arrive as host f32 slabs (the seeded init, or [train] init_from),
// which are checksummed before they are stored: the base checksum is the layout-free
// checksum (io/tensor_slab.h) of every base tensor, folded in parameter order, identical on
// every rank and layout. Checkpoints record it with the base's source (BaseRef) and a resume
// verifies it (train/lora_setup.h).
// QLoRA ([lora] base_dtype = "nf4"): the blocks' linear weights (q, k, v, out, gate, up, down)
// are stored in NF4 (model/nf4_weights.h) — each rank quantises its own tp slab, so the
// quantisation depends on parallel.tp (and nothing else of the layout) — and the frozen store
// holds them as external parameters; embeddings, norms, biases and the head stay dense.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "io/tensor_slab.h"
#include "model/nf4_weights.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "parallel/topology.h"

namespace llmpi {

// QLoRA: whether base weight `name` is stored in NF4 (the blocks' linear maps).
bool nf4_base_weight(const std::string& name);
// QLoRA: elements of the dequantisation scratch for the NF4 weights among `ps` (their local
// slabs): the largest packed map (q|k|v, gate|up, or a single one), dequantised at once.
int64_t nf4_scratch_elems(std::span<const ParamInfo> ps);
// The base checksum from each base tensor's layout-free checksum, in transformer_params order.
uint64_t fold_base_checksum(std::span<const uint64_t> per_tensor);

// The trainable parameters of a rank's chunks, tp-sharded when tp > 1: the adapters with
// LoRA (adapter_params), else the model's (rank_params).
std::vector<ParamInfo> trainable_params(const Config& cfg, const Topology& topo,
                                        std::span<const StageRange> chunks);

// A chunk model over the trainable store (`base` null), or over the frozen base with the
// trainable store's adapters beside it.
std::unique_ptr<Transformer> make_stage_model(const Config& cfg, const StageRange& range,
                                              const ParamStore* base, const ParamStore& trainable);

class FrozenBase {
 public:
  // The base slabs of `chunks` (tp-local), initialized from the seed (collective over the
  // world: the checksum).
  FrozenBase(const Config& cfg, Topology& topo, Backend& be, std::span<const StageRange> chunks,
             DType master);

  const ParamStore& store() const { return *store_; }
  // Collective over the world: `fill` writes the f32 values of every slab (the base params,
  // global names and boxes, as ParallelEngine::load_params); they are checksummed and stored.
  void load(const std::function<void(std::vector<TensorSlab>&)>& fill);
  uint64_t checksum() const { return checksum_; }
  int64_t bytes() const;  // dense store, NF4 weights and their dequantisation scratch
  // QLoRA: the NF4 weights' elements on this rank and their bytes (0, 0 without NF4).
  int64_t nf4_params() const { return nf4_params_; }
  int64_t nf4_bytes() const { return nf4_.bytes(); }
  int64_t global_param_count() const { return global_params_; }

 private:
  Topology& topo_;
  Backend& be_;
  Nf4Weights nf4_;  // QLoRA's NF4 weights (before store_: the store points at them)
  std::unique_ptr<ParamStore> store_;
  int64_t nf4_params_ = 0;
  std::vector<std::string> names_;  // every base tensor of the model, in layout order
  uint64_t checksum_ = 0;
  int64_t global_params_ = 0;
};

}  // namespace llmpi
