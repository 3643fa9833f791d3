#pragma once
// Layout rules: every condition a parallel layout must meet for a model, a batch and a job
// size, each decided here, once, as one predicate. Three places report them, each in its
// own words, and all three get the verdict from broken_layout_rules:
//   the config checks      config/config_checks.cpp   the key and its line
//   the topology           parallel/topology.cpp       every degree, and the job's ranks
//   the tp install         parallel/tensor_parallel.cpp what the split needs
//
//   rule                        holds when
//   world_size                  tp · pp · dp = ranks of the job
//   tp_heads                    tp | n_head: each tp rank computes n_head / tp whole heads
//   tp_kv_heads                 tp | n_kv_head (whole kv heads per rank) or n_kv_head | tp
//                               (each kv head replicated on tp / n_kv_head ranks)
//   tp_d_ff                     tp | d_ff: the MLP hidden width splits evenly
//   tp_vocab                    tp <= vocab_size: each tp rank holds a slab of the vocabulary
//   sp_needs_tp                 sequence parallelism ⇒ tp > 1
//   sp_rows                     sequence parallelism ⇒ tp | batch_size · seq_len. The token
//                               rows of a micro-batch ([B, T] flattened) are split in equal
//                               contiguous chunks that may cross sequence boundaries
//                               (parallel/tp_comm.h); positions are taken per row, so
//                               seq_len itself need not be a multiple of tp.
//   virtual_stages_need_pp      virtual_stages > 1 ⇒ pp > 1
//   interleaved_micro_batches   virtual_stages > 1 ⇒ pp | micro_batches (the interleaved
//                               schedule runs micro-batches in groups of pp)
//   chunks_have_layers          pp · virtual_stages <= n_layer: every chunk holds a layer
//   stage_layers_count          stage_layers given ⇒ one entry per chunk (pp · virtual_stages)
//   stage_layers_sum            stage_layers given ⇒ they sum to n_layer
//   zero3_without_pp            zero_stage = 3 ⇒ pp = 1: ZeRO-3 gathers a layer before each
//                               use, and a pipeline stage uses each layer twice per micro-batch
// The degrees' ranges (integers >= 1, zero_stage 0..3, stage_layers entries >= 1) are checked
// before these rules, by the config schema and by validate_layout.
#include <cstdint>
#include <span>
#include <vector>

#include "config/config.h"
#include "core/layout.h"

namespace llmpi {

enum class LayoutRule : uint8_t {
  world_size,
  tp_heads,
  tp_kv_heads,
  tp_d_ff,
  tp_vocab,
  sp_needs_tp,
  sp_rows,
  virtual_stages_need_pp,
  interleaved_micro_batches,
  chunks_have_layers,
  stage_layers_count,
  stage_layers_sum,
  zero3_without_pp,
};
const char* layout_rule_name(LayoutRule r);

// The rules one at a time, over exactly the values each reads.
bool degrees_fill_world(int64_t tp, int64_t pp, int64_t dp, int64_t ranks);
bool tp_divides_heads(int64_t tp, int64_t n_head);
bool tp_fits_kv_heads(int64_t tp, int64_t n_kv_head);
bool tp_divides_d_ff(int64_t tp, int64_t d_ff);
bool tp_fits_vocab(int64_t tp, int64_t vocab_size);
bool sp_has_tp(bool sequence_parallel, int64_t tp);
bool sp_splits_rows(bool sequence_parallel, int64_t tp, int64_t rows);
bool virtual_stages_have_pp(int64_t virtual_stages, int64_t pp);
bool interleaved_micro_batches_fit(int64_t virtual_stages, int64_t pp, int64_t micro_batches);
bool chunks_have_layers(int64_t chunks, int64_t n_layer);
bool stage_layers_count_fits(std::span<const int64_t> stage_layers, int64_t chunks);
bool stage_layers_sum_fits(std::span<const int64_t> stage_layers, int64_t n_layer);
bool zero_stage_fits_pp(int64_t zero_stage, int64_t pp);

// What the rules read. Unknown inputs are 0 and the rules on them hold: the config checks
// do not know the job's ranks, the tp install knows only the model, tp and the rows (and a
// hand-built Config may leave model sizes at 0).
struct LayoutFacts {
  int64_t tp = 1, pp = 1, dp = 1, zero_stage = 0, virtual_stages = 1, micro_batches = 1;
  bool sequence_parallel = false;
  std::vector<int64_t> stage_layers;  // empty: the balanced split
  int64_t n_head = 0, n_kv_head = 0, d_ff = 0, vocab_size = 0, n_layer = 0;
  int64_t rows = 0;   // token rows of a micro-batch: batch_size · seq_len (0: unknown)
  int64_t ranks = 0;  // MPI ranks of the job (0: unknown)

  // From a configuration (degrees in range), for a job of `ranks` ranks (0: unknown).
  static LayoutFacts of(const Config& c, int64_t ranks = 0);
  // What the tensor-parallel install sees: the model's sizes, tp, sequence parallelism.
  static LayoutFacts of_tp(const ModelConfig& m, int64_t tp, bool sequence_parallel,
                           int64_t rows);
};

// Whether `f` keeps rule r.
bool layout_rule_holds(LayoutRule r, const LayoutFacts& f);
// Every rule `f` breaks, in the order of LayoutRule.
std::vector<LayoutRule> broken_layout_rules(const LayoutFacts& f);

// The Layout record of a configuration's [parallel] section (degrees validated to fit int).
Layout layout_of(const ParallelSection& p);

}  // namespace llmpi
