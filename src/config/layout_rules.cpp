// The layout rules (see layout_rules.h): one predicate each, and their evaluation in order.
#include "config/layout_rules.h"

#include <climits>

#include "core/error.h"

namespace llmpi {

const char* layout_rule_name(LayoutRule r) {
  switch (r) {
    case LayoutRule::world_size: return "world_size";
    case LayoutRule::tp_heads: return "tp_heads";
    case LayoutRule::tp_kv_heads: return "tp_kv_heads";
    case LayoutRule::tp_d_ff: return "tp_d_ff";
    case LayoutRule::tp_vocab: return "tp_vocab";
    case LayoutRule::sp_needs_tp: return "sp_needs_tp";
    case LayoutRule::sp_rows: return "sp_rows";
    case LayoutRule::virtual_stages_need_pp: return "virtual_stages_need_pp";
    case LayoutRule::interleaved_micro_batches: return "interleaved_micro_batches";
    case LayoutRule::chunks_have_layers: return "chunks_have_layers";
    case LayoutRule::stage_layers_count: return "stage_layers_count";
    case LayoutRule::stage_layers_sum: return "stage_layers_sum";
    case LayoutRule::zero3_without_pp: return "zero3_without_pp";
  }
  return "?";
}

bool degrees_fill_world(int64_t tp, int64_t pp, int64_t dp, int64_t ranks) {
  return ranks == 0 || tp * pp * dp == ranks;
}
bool tp_divides_heads(int64_t tp, int64_t n_head) { return n_head % tp == 0; }  // 0: unknown
bool tp_fits_kv_heads(int64_t tp, int64_t n_kv_head) {
  return n_kv_head <= 0 || n_kv_head % tp == 0 || tp % n_kv_head == 0;
}
bool tp_divides_d_ff(int64_t tp, int64_t d_ff) { return d_ff % tp == 0; }
bool tp_fits_vocab(int64_t tp, int64_t vocab_size) { return vocab_size <= 0 || tp <= vocab_size; }
bool sp_has_tp(bool sequence_parallel, int64_t tp) { return !sequence_parallel || tp > 1; }
bool sp_splits_rows(bool sequence_parallel, int64_t tp, int64_t rows) {
  return !sequence_parallel || rows % tp == 0;
}
bool virtual_stages_have_pp(int64_t virtual_stages, int64_t pp) {
  return virtual_stages == 1 || pp > 1;
}
bool interleaved_micro_batches_fit(int64_t virtual_stages, int64_t pp, int64_t micro_batches) {
  return virtual_stages == 1 || micro_batches % pp == 0;
}
bool chunks_have_layers(int64_t chunks, int64_t n_layer) { return n_layer <= 0 || chunks <= n_layer; }
bool stage_layers_count_fits(std::span<const int64_t> stage_layers, int64_t chunks) {
  return stage_layers.empty() || static_cast<int64_t>(stage_layers.size()) == chunks;
}
bool stage_layers_sum_fits(std::span<const int64_t> stage_layers, int64_t n_layer) {
  int64_t sum = 0;
  for (int64_t n : stage_layers) sum += n;
  return stage_layers.empty() || n_layer <= 0 || sum == n_layer;
}
bool zero_stage_fits_pp(int64_t zero_stage, int64_t pp) { return zero_stage != 3 || pp == 1; }

LayoutFacts LayoutFacts::of(const Config& c, int64_t ranks) {
  const ParallelSection& p = c.parallel;
  LayoutFacts f;
  f.tp = p.tp;
  f.pp = p.pp;
  f.dp = p.dp;
  f.zero_stage = p.zero_stage;
  f.virtual_stages = p.virtual_stages;
  f.micro_batches = p.micro_batches;
  f.sequence_parallel = p.sequence_parallel;
  f.stage_layers = p.stage_layers;
  f.n_head = c.model.n_head;
  f.n_kv_head = c.model.kv_heads();
  f.d_ff = c.model.d_ff;
  f.vocab_size = c.model.vocab_size;
  f.n_layer = c.model.n_layer;
  f.rows = c.train.batch_size * c.train.seq_len;
  f.ranks = ranks;
  return f;
}

LayoutFacts LayoutFacts::of_tp(const ModelConfig& m, int64_t tp, bool sequence_parallel,
                               int64_t rows) {
  LayoutFacts f;
  f.tp = tp;
  f.sequence_parallel = sequence_parallel;
  f.n_head = m.n_head;
  f.n_kv_head = m.kv_heads();
  f.d_ff = m.d_ff;
  f.vocab_size = m.vocab_size;
  f.n_layer = m.n_layer;
  f.rows = rows;
  return f;
}

bool layout_rule_holds(LayoutRule r, const LayoutFacts& f) {
  LLMPI_CHECK(f.tp >= 1 && f.pp >= 1 && f.dp >= 1 && f.virtual_stages >= 1 &&
                  f.micro_batches >= 1,
              "layout rules need degrees >= 1 (check their ranges first)");
  const int64_t chunks = f.pp * f.virtual_stages;
  switch (r) {
    case LayoutRule::world_size: return degrees_fill_world(f.tp, f.pp, f.dp, f.ranks);
    case LayoutRule::tp_heads: return tp_divides_heads(f.tp, f.n_head);
    case LayoutRule::tp_kv_heads: return tp_fits_kv_heads(f.tp, f.n_kv_head);
    case LayoutRule::tp_d_ff: return tp_divides_d_ff(f.tp, f.d_ff);
    case LayoutRule::tp_vocab: return tp_fits_vocab(f.tp, f.vocab_size);
    case LayoutRule::sp_needs_tp: return sp_has_tp(f.sequence_parallel, f.tp);
    case LayoutRule::sp_rows: return sp_splits_rows(f.sequence_parallel, f.tp, f.rows);
    case LayoutRule::virtual_stages_need_pp: return virtual_stages_have_pp(f.virtual_stages, f.pp);
    case LayoutRule::interleaved_micro_batches:
      return interleaved_micro_batches_fit(f.virtual_stages, f.pp, f.micro_batches);
    case LayoutRule::chunks_have_layers: return chunks_have_layers(chunks, f.n_layer);
    case LayoutRule::stage_layers_count: return stage_layers_count_fits(f.stage_layers, chunks);
    case LayoutRule::stage_layers_sum: return stage_layers_sum_fits(f.stage_layers, f.n_layer);
    case LayoutRule::zero3_without_pp: return zero_stage_fits_pp(f.zero_stage, f.pp);
  }
  return true;
}

std::vector<LayoutRule> broken_layout_rules(const LayoutFacts& f) {
  std::vector<LayoutRule> broken;
  for (int r = 0; r <= static_cast<int>(LayoutRule::zero3_without_pp); ++r)
    if (!layout_rule_holds(static_cast<LayoutRule>(r), f)) broken.push_back(static_cast<LayoutRule>(r));
  return broken;
}

Layout layout_of(const ParallelSection& p) {
  auto degree = [](int64_t v, const char* key) {
    LLMPI_CHECK(v >= 1 && v <= INT_MAX, "parallel.", key, " = ", v, " (validate first)");
    return static_cast<int>(v);
  };
  Layout l;
  l.tp = degree(p.tp, "tp");
  l.dp = degree(p.dp, "dp");
  l.pp = degree(p.pp, "pp");
  l.zero_stage = p.zero_stage;
  l.virtual_stages = degree(p.virtual_stages, "virtual_stages");
  l.micro_batches = degree(p.micro_batches, "micro_batches");
  l.sequence_parallel = p.sequence_parallel;
  return l;
}

}  // namespace llmpi
