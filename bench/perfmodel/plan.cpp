// Plan (see plan.h): the engine's Config of a layout and its problems.
#include "bench/perfmodel/plan.h"

#include <sstream>

#include "parallel/topology.h"

namespace llmpi::perf {

std::string Plan::str() const {
  std::ostringstream o;
  o << "tp" << tp << " pp" << pp << " dp" << dp << " z" << zero << " M" << micro_batches << " B"
    << batch;
  if (virtual_stages > 1) o << " v" << virtual_stages;
  if (sp) o << " sp";
  if (recompute != Recompute::none) o << " rc=" << recompute_name(recompute);
  return o.str();
}

Config plan_config(const ModelConfig& model, const Plan& p) {
  Config c;
  c.model = model;
  c.model.recompute = p.recompute;
  c.train.batch_size = p.batch;
  c.train.seq_len = p.seq_len;
  c.train.steps = 1;
  c.parallel.tp = p.tp;
  c.parallel.pp = p.pp;
  c.parallel.dp = p.dp;
  c.parallel.zero_stage = p.zero;
  c.parallel.micro_batches = p.micro_batches;
  c.parallel.sequence_parallel = p.sp;
  c.parallel.virtual_stages = p.virtual_stages;
  return c;
}

std::string plan_problems(const ModelConfig& model, const Plan& p) {
  std::string out = validate_layout(plan_config(model, p), int(p.world()));
  std::ostringstream more;
  if (p.seq_len > model.max_seq_len && model.max_seq_len > 0)
    more << "seq_len " << p.seq_len << " exceeds model.max_seq_len " << model.max_seq_len << "\n";
  return out + more.str();
}

}  // namespace llmpi::perf
