#include "parallel/topology.h"

#include <array>
#include <climits>
#include <sstream>

#include "config/layout_rules.h"

namespace llmpi {

// ---- validation ---------------------------------------------------------------------------

std::string validate_layout(const Config& cfg, int world_size) {
  const ParallelSection& p = cfg.parallel;
  const ModelConfig& m = cfg.model;
  std::ostringstream out;
  auto problem = [&](auto&&... parts) { ((out << parts), ...) << '\n'; };

  bool degrees_ok = true;
  // A bound on each degree keeps their product far from overflow (and is beyond any machine).
  constexpr int64_t kMaxDegree = int64_t{1} << 20;
  auto at_least_one = [&](int64_t v, const char* key) {
    if (v >= 1 && v <= kMaxDegree) return;
    problem("parallel.", key, " = ", v, ": expected an integer in [1, ", kMaxDegree, "]");
    degrees_ok = false;
  };
  at_least_one(p.tp, "tp");
  at_least_one(p.pp, "pp");
  at_least_one(p.dp, "dp");
  at_least_one(p.virtual_stages, "virtual_stages");
  at_least_one(p.micro_batches, "micro_batches");
  if (p.zero_stage < 0 || p.zero_stage > 3)
    problem("parallel.zero_stage = ", p.zero_stage, ": expected 0, 1, 2 or 3");
  if (!degrees_ok) return out.str();  // the rules below divide by the degrees

  // The rules of config/layout_rules.h, in the topology's words: the degrees as given.
  const int64_t rows = cfg.train.batch_size * cfg.train.seq_len;
  for (LayoutRule r : broken_layout_rules(LayoutFacts::of(cfg, world_size))) switch (r) {
      case LayoutRule::world_size: {
        const int64_t product = p.tp * p.pp * p.dp;
        std::string hint;
        if (world_size % (p.tp * p.pp) == 0)
          hint = detail::concat("; with tp=", p.tp, " and pp=", p.pp, ", set dp=",
                                world_size / (p.tp * p.pp));
        problem("parallel: tp=", p.tp, " × pp=", p.pp, " × dp=", p.dp, " = ", product,
                ", but the job has ", world_size, " ranks (the product of the degrees must ",
                "equal the number of MPI ranks", hint, ")");
        break;
      }
      case LayoutRule::tp_heads:
        problem("parallel.tp = ", p.tp, " does not divide model.n_head = ", m.n_head,
                ": tensor parallelism gives every tp rank n_head / tp whole attention heads");
        break;
      case LayoutRule::tp_kv_heads:
        problem("parallel.tp = ", p.tp, " does not divide model.n_kv_head = ", m.kv_heads(),
                ", nor does n_kv_head divide tp: tensor parallelism gives every tp rank "
                "n_kv_head / tp whole key/value heads, or (n_kv_head < tp) replicates each "
                "key/value head on tp / n_kv_head ranks");
        break;
      case LayoutRule::tp_d_ff:
        problem("parallel.tp = ", p.tp, " does not divide model.d_ff = ", m.d_ff,
                ": tensor parallelism splits the MLP hidden width evenly over the tp ranks");
        break;
      case LayoutRule::tp_vocab:
        problem("parallel.tp = ", p.tp, " exceeds model.vocab_size = ", m.vocab_size,
                ": tensor parallelism gives every tp rank a slab of the vocabulary");
        break;
      case LayoutRule::sp_needs_tp:
        problem("parallel.sequence_parallel = true needs parallel.tp > 1: sequence "
                "parallelism splits the token rows over the tensor-parallel group, which here "
                "has one rank");
        break;
      case LayoutRule::sp_rows:
        problem("parallel.sequence_parallel: train.batch_size × train.seq_len = ",
                cfg.train.batch_size, " × ", cfg.train.seq_len, " = ", rows,
                " token rows are not divisible by parallel.tp = ", p.tp,
                ": every tp rank holds an equal contiguous chunk of the rows");
        break;
      case LayoutRule::virtual_stages_need_pp:
        problem("parallel.virtual_stages = ", p.virtual_stages, " needs parallel.pp > 1: ",
                "virtual stages interleave the model chunks of a pipeline");
        break;
      case LayoutRule::interleaved_micro_batches:
        problem("parallel.micro_batches = ", p.micro_batches, " is not a multiple of ",
                "parallel.pp = ", p.pp, ": the interleaved schedule (virtual_stages = ",
                p.virtual_stages, ") runs micro-batches in groups of pp");
        break;
      case LayoutRule::chunks_have_layers:
        problem("parallel.pp × parallel.virtual_stages = ", p.pp, " × ", p.virtual_stages,
                " = ", p.pp * p.virtual_stages, " model chunks, but model.n_layer = ",
                m.n_layer, ": every pipeline chunk needs at least one layer");
        break;
      case LayoutRule::stage_layers_count:
        problem("parallel.stage_layers has ", p.stage_layers.size(), " entries for parallel.pp",
                " × parallel.virtual_stages = ", p.pp * p.virtual_stages,
                " model chunks: expected one layer count per chunk");
        break;
      case LayoutRule::stage_layers_sum:
        problem("parallel.stage_layers does not sum to model.n_layer = ", m.n_layer,
                ": every layer belongs to one pipeline chunk");
        break;
      case LayoutRule::zero3_without_pp:
        problem("parallel.zero_stage = 3 with parallel.pp = ", p.pp,
                " is not supported: ZeRO-3 gathers each layer's parameters before every use "
                "and frees them after, and a pipeline stage runs each of its layers once per "
                "micro-batch in forward and again in backward, so every step would all-gather "
                "all parameters 2 × micro_batches times instead of twice; use zero_stage 1 or "
                "2 with pipeline parallelism");
        break;
    }
  return out.str();
}

// ---- Topology ----------------------------------------------------------------------------

namespace {

// Splits `parent` (the world) so that each of `groups` becomes one communicator; a rank in
// none of them gets a null Communicator. The key is the position in the group, so the
// communicator rank equals the index in the (sorted) group.
Communicator split_into(const Communicator& parent, const std::vector<std::vector<int>>& groups,
                        const std::string& name) {
  int color = -1, key = 0;
  for (size_t g = 0; g < groups.size() && color < 0; ++g)
    for (size_t i = 0; i < groups[g].size(); ++i)
      if (groups[g][i] == parent.rank()) {
        color = static_cast<int>(g);
        key = static_cast<int>(i);
      }
  return Communicator::split(parent, color, key, name);
}

// The values every rank must agree on (the layout and what it is validated against).
std::array<int64_t, 10> layout_fingerprint(const Config& c) {
  const ParallelSection& p = c.parallel;
  return {p.tp, p.pp, p.dp, p.zero_stage, p.sequence_parallel, p.virtual_stages,
          c.model.n_head, c.model.n_kv_head, c.model.n_layer, c.model.d_ff};
}

}  // namespace

Topology::Topology(const Config& cfg, MPI_Comm parent)
    : world_comm_(Communicator::dup(parent, "world")) {
  // Every rank validates the same input; then one all-reduce makes them agree, so that they
  // throw together even if some rank was (wrongly) given another configuration.
  const std::string problems = validate_layout(cfg, world_comm_.size());
  const auto fp = layout_fingerprint(cfg);
  std::array<int64_t, 2 * fp.size() + 1> mm{};  // [max fp | max -fp | any problem]
  for (size_t i = 0; i < fp.size(); ++i) {
    mm[i] = fp[i];
    mm[fp.size() + i] = -fp[i];
  }
  mm.back() = problems.empty() ? 0 : 1;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, mm.data(), static_cast<int>(mm.size()), MPI_INT64_T,
                          MPI_MAX, world_comm_.get()),
            "MPI_Allreduce (layout agreement)", &world_comm_);
  bool agree = true;
  for (size_t i = 0; i < fp.size(); ++i) agree = agree && mm[i] == -mm[fp.size() + i];
  const std::string where = cfg.source_path.empty() ? std::string("config") : cfg.source_path;
  if (!problems.empty())
    throw LayoutError(detail::concat(
        where, ": invalid parallel layout tp=", cfg.parallel.tp, " × pp=", cfg.parallel.pp,
        " × dp=", cfg.parallel.dp, " (zero_stage ", cfg.parallel.zero_stage, ", virtual_stages ",
        cfg.parallel.virtual_stages, ", micro_batches ", cfg.parallel.micro_batches,
        ", sequence_parallel ", cfg.parallel.sequence_parallel ? "true" : "false", ") on ",
        world_comm_.size(), " ranks:\n", problems));
  if (mm.back() != 0 || !agree)
    throw LayoutError(where + ": the ranks of this job were given different parallel layouts "
                              "or models; every rank must read the same configuration");

  layout_ = layout_of(cfg.parallel);
  coord_ = layout_.coord_of(world_comm_.rank());
  tp_comm_ = split_into(world_comm_, layout_.groups(Axis::tp), "tp");
  dp_comm_ = split_into(world_comm_, layout_.groups(Axis::dp), "dp");
  pp_comm_ = split_into(world_comm_, layout_.groups(Axis::pp), "pp");
  embedding_comm_ = split_into(world_comm_, layout_.embedding_groups(), "embedding");
  LLMPI_CHECK(tp_comm_.rank() == coord_.tp && dp_comm_.rank() == coord_.dp &&
                  pp_comm_.rank() == coord_.pp,
              "group ranks disagree with the grid coordinates");

  const auto observed = [this](const Communicator& c) {
    return std::make_unique<ObservedCollectives>(std::make_unique<MpiCollectives>(c), c.name(),
                                                 observer_);
  };
  world_ = observed(world_comm_);
  tp_ = observed(tp_comm_);
  dp_ = observed(dp_comm_);
  pp_ = observed(pp_comm_);
  if (embedding_comm_.valid()) embedding_ = observed(embedding_comm_);
}

Collectives& Topology::embedding() {
  LLMPI_CHECK(embedding_, "rank ", rank(), " (pipeline stage ", coord_.pp,
              ") is not in an embedding group: only the first and last stages are");
  return *embedding_;
}

const Communicator& Topology::communicator(Axis a) const {
  switch (a) {
    case Axis::tp: return tp_comm_;
    case Axis::dp: return dp_comm_;
    case Axis::pp: return pp_comm_;
  }
  LLMPI_CHECK(false, "unknown axis");
  return tp_comm_;
}

std::string Topology::describe() const {
  return detail::concat("rank ", rank(), " of ", world_size(), ": tp ", coord_.tp, "/", layout_.tp,
                        ", dp ", coord_.dp, "/", layout_.dp, ", pp ", coord_.pp, "/", layout_.pp);
}

}  // namespace llmpi
