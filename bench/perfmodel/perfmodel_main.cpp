// llmpi_perfmodel: the performance model's command line (docs/scaling.md).
//   predict CONFIG [--set k=v ...] --profile P.json [--profile ...] (--comm C.json | --cluster)
//           [--device host|cuda] [--overlap] [--staging-gbs G] [--cores N]
//       The step time of the config's own layout ([parallel], [train] batch_size, seq_len,
//       recompute), split into its parts, and the largest rank's memory. With several
//       profiles, the one whose micro-batch (B·T tokens) is closest to the config's is used.
//       Prints one JSON line last ({"plan": ..., "predicted_ms": ...}) for scripts.
//   project CONFIG [--set k=v ...] --gpus 8,16,... [--global-batch 1024] [--memory-gib 80]
//           [--reserve-gib 4] [--profile P.json] [--comm C.json] [--overlap] [--keep 3]
//           [--nvlink-fraction 0.8] [--ib-fraction 0.85] [--nvlink-alpha-us 5] [--ib-alpha-us 10]
//           [--staging-gbs 20]
//       The best layouts per GPU count on H100 nodes (8 per node, NVLink inside, 400 Gb/s
//       InfiniBand between): one markdown table row per GPU count. Compute from --profile or
//       the H100 reference profile (h100_reference.h); the network from the link figures
//       (or --comm, a measured NCCL table, for the NVLink link of 2-GPU groups).
//   reference-profile --json FILE
//       Writes the H100 reference profile (for inspection, or as a --profile).
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>  // builds its App

#include "bench/perfmodel/h100_reference.h"
#include "bench/perfmodel/layout_search.h"
#include "bench/perfmodel/tool_io.h"
#include "cli/options.h"
#include "config/config.h"
#include "core/error.h"

namespace llmpi::perf {
namespace {

Plan plan_of(const Config& c) {
  Plan p;
  p.tp = c.parallel.tp, p.pp = c.parallel.pp, p.dp = c.parallel.dp;
  p.zero = c.parallel.zero_stage;
  p.micro_batches = c.parallel.micro_batches;
  p.batch = c.train.batch_size;
  p.seq_len = c.train.seq_len;
  p.virtual_stages = c.parallel.virtual_stages;
  p.sp = c.parallel.sequence_parallel;
  p.recompute = c.model.recompute;
  return p;
}

std::vector<int64_t> int_list(const std::string& s, const char* opt) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long long x = std::stoll(item, &used);
      if (used != item.size() || x < 1) throw std::invalid_argument(item);
      v.push_back(x);
    } catch (const std::exception&) {
      user_error(opt, ": expected positive integers separated by commas, got '", s, "'");
    }
  }
  if (v.empty()) user_error(opt, ": expected at least one number");
  return v;
}

bool same_width(const ModelConfig& a, const ModelConfig& b) {
  return a.arch == b.arch && a.vocab_size == b.vocab_size && a.n_head == b.n_head &&
         a.kv_heads() == b.kv_heads() && a.d_model == b.d_model && a.d_ff == b.d_ff;
}

// The profile of the model's width (any layer count) whose micro-batch is closest in tokens;
// a profile of another width only when none matches (its ops are then scaled by work).
const OpProfile& closest(const std::vector<OpProfile>& ps, const ModelConfig& m, const Plan& p) {
  bool any_same = false;
  for (const OpProfile& q : ps) any_same |= same_width(q.model, m);
  const OpProfile* best = nullptr;
  const double want = std::log(double(p.batch * p.seq_len));
  auto dist = [&](const OpProfile& q) { return std::abs(std::log(double(q.B * q.T)) - want); };
  for (const OpProfile& q : ps)
    if ((!any_same || same_width(q.model, m)) && (!best || dist(q) < dist(*best))) best = &q;
  if (!any_same)
    std::fprintf(stderr, "llmpi_perfmodel: no profile of this model's width; scaling %s by work\n",
                 best->source.c_str());
  return *best;
}

double gib(double b) { return b / double(int64_t{1} << 30); }

struct PredictArgs {
  std::string config, comm, device = "host";
  std::vector<std::string> sets, profiles;
  bool cluster = false, overlap = false;
  double staging_gbs = 0;
  int64_t cores = 0;
};

int predict(const PredictArgs& a) {
  std::vector<OpProfile> profiles;
  for (const std::string& f : a.profiles) profiles.push_back(load_profile(f));
  const Device dev = a.device == "cuda" ? Device::cuda : Device::host;
  ModelOptions o;
  o.device = dev;
  o.overlap = a.overlap;
  o.staging_bytes_per_s = a.staging_gbs * 1e9;
  o.host_cores = int(a.cores);
  if (dev == Device::cuda) o.peak_flops = kH100Bf16Dense;
  if (a.comm.empty() == !a.cluster) user_error("predict: give exactly one of --comm FILE and --cluster");
  const std::string& comm = a.comm;
  const bool cluster = a.cluster;
  const Config cfg = load_config(a.config, a.sets);
  const Plan p = plan_of(cfg);
  const OpProfile& prof = closest(profiles, cfg.model, p);
  const CommCost cost = cluster ? CommCost(h100_cluster()) : CommCost(load_comm(comm));
  const StepPrediction r = predict_step(cfg.model, p, prof, cost, o);
  std::printf("plan %s (%lld tokens per step)\n", p.str().c_str(),
              (long long)(p.global_sequences() * p.seq_len));
  std::printf("profile %s (B=%lld T=%lld); comm %s\n", prof.source.c_str(), (long long)prof.B,
              (long long)prof.T, cost.describe().c_str());
  std::printf("predicted step %s\n", r.str().c_str());
  std::printf("predicted %.0f tokens/s", r.tokens_per_s);
  if (r.mfu > 0) std::printf(", MFU %.1f %%", 100 * r.mfu);
  const RankMemory& m = r.memory;
  std::printf("\nlargest rank: %.3f GiB = params %.3f + grads %.3f + optimizer %.3f + compute copy %.3f "
              "+ transient %.3f + activations %.3f + workspace %.3f\n",
              gib(m.total()), gib(m.params), gib(m.grads), gib(m.optimizer), gib(m.compute_copy),
              gib(m.transient), gib(m.activations), gib(m.workspace));
  std::printf("{\"plan\": \"%s\", \"predicted_ms\": %.4f, \"tokens_per_s\": %.1f, \"memory_gib\": %.4f}\n",
              p.str().c_str(), r.total_s * 1e3, r.tokens_per_s, gib(m.total()));
  return 0;
}

struct ProjectArgs {
  std::string config, gpus, profile, comm;
  std::vector<std::string> sets;
  int64_t global = 1024, keep = 3;
  double memory_gib = 80, reserve_gib = 4, staging_gbs = 20;
  double nvlink_fraction = 0.8, ib_fraction = 0.85, nvlink_alpha_us = 5, ib_alpha_us = 10;
  bool overlap = false;
};

int project(const ProjectArgs& a) {
  const std::vector<int64_t> gpus = int_list(a.gpus, "--gpus");
  const int64_t global = a.global;
  const double limit = (a.memory_gib - a.reserve_gib) * double(int64_t{1} << 30);
  const std::string& profile = a.profile;
  const std::string& comm = a.comm;
  ModelOptions o;
  o.device = Device::cuda;
  o.peak_flops = kH100Bf16Dense;
  o.overlap = a.overlap;
  o.staging_bytes_per_s = a.staging_gbs * 1e9;
  const size_t keep = size_t(a.keep);
  Cluster k = h100_cluster(a.nvlink_fraction, a.ib_fraction, a.nvlink_alpha_us * 1e-6, a.ib_alpha_us * 1e-6);
  if (limit <= 0) user_error("project: --memory-gib must exceed --reserve-gib");
  if (!comm.empty()) {  // a measured 2-GPU NCCL table calibrates the NVLink link
    const CommTable t = load_comm(comm);
    const AlphaBeta f = fit_alpha_beta(t.points.at(Coll::all_reduce));
    // all_reduce of 2 ranks: 2·α + S/B (link_seconds with p = 2).
    k.intra = {f.alpha / 2, f.beta > 0 ? 1.0 / f.beta : k.intra.bytes_per_s};
  }
  const Config cfg = load_config(a.config, a.sets);
  const OpProfile prof = profile.empty() ? h100_reference_profile() : load_profile(profile);
  const CommCost cost(k);
  std::printf("model %s: %lld layers, width %lld, %lld:%lld heads, FFN %lld, vocab %lld, T %lld; "
              "global batch %lld sequences; %.0f GiB per GPU usable\n",
              a.config.c_str(), (long long)cfg.model.n_layer, (long long)cfg.model.d_model,
              (long long)cfg.model.n_head, (long long)cfg.model.kv_heads(), (long long)cfg.model.d_ff,
              (long long)cfg.model.vocab_size, (long long)cfg.train.seq_len, (long long)global, gib(limit));
  std::printf("compute: %s\nnetwork: %s%s\n", prof.source.c_str(), cost.describe().c_str(),
              o.overlap ? "; dp/ZeRO communication overlapped (part 2)" : "; nothing overlapped (engine today)");
  std::printf("| GPUs | layout | step s | tokens/s | per GPU | MFU | memory GiB | compute / tp / bubble / dp / optimizer s |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int64_t g : gpus) {
    const SearchResult res = search_layouts(cfg.model, g, k.per_node, global, cfg.train.seq_len,
                                            limit, SearchSpace{}, prof, cost, o, keep);
    if (res.best.empty()) {
      std::printf("| %lld | none fits (%lld plans, %lld valid) | | | | | | |\n", (long long)g,
                  (long long)res.considered, (long long)res.valid);
      continue;
    }
    for (size_t i = 0; i < res.best.size(); ++i) {
      const Candidate& c = res.best[i];
      const StepPrediction& r = c.pred;
      std::printf("| %s | %s%s | %.2f | %.0f | %.0f | %.1f %% | %.1f | %.2f / %.2f / %.2f / %.2f / %.2f |\n",
                  i == 0 ? std::to_string(g).c_str() : "", c.plan.str().c_str(), i == 0 ? " **best**" : "",
                  r.total_s, r.tokens_per_s, r.tokens_per_s / double(g), 100 * r.mfu,
                  gib(r.memory.total()), r.compute_s, r.tp_comm_s, r.bubble_s, r.dp_comm_s, r.optimizer_s);
    }
  }
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"The performance model of llmpi's training step (docs/scaling.md).", "llmpi_perfmodel"};
  app.require_subcommand(1);
  PredictArgs pa;
  CLI::App* pr = app.add_subcommand("predict", "step time and memory of CONFIG's own layout");
  add_value(*pr, "CONFIG", pa.config, "CONFIG", "the TOML config (its [parallel] and [train] layout)")->required();
  add_list(*pr, "--set", pa.sets, "KEY=VALUE", "override one config key (repeatable)");
  add_list(*pr, "--profile", pa.profiles, "FILE", "an llmpi_op_profile JSON (repeatable; the closest is used)")->required();
  add_value(*pr, "--comm", pa.comm, "FILE", "an llmpi_collective_bench JSON (measured collectives)");
  add_switch(*pr, "--cluster", pa.cluster, "H100 cluster link figures instead of --comm");
  add_value(*pr, "--device", pa.device, "host|cuda", "activation dtype and MFU peak (default host)")
      ->check(one_of({"host", "cuda"}));
  add_switch(*pr, "--overlap", pa.overlap, "model part 2's overlap of dp/ZeRO communication");
  add_value(*pr, "--staging-gbs", pa.staging_gbs, "G", "host staging of pipeline messages, GB/s (0: none)")
      ->check(at_least(0));
  add_value(*pr, "--cores", pa.cores, "N", "host cores the ranks share (0: one per rank; default 0)")
      ->check(at_least(0));
  ProjectArgs ja;
  CLI::App* pj = app.add_subcommand("project", "best layouts per GPU count on H100 nodes");
  add_value(*pj, "CONFIG", ja.config, "CONFIG", "the TOML config (model shape, seq_len)")->required();
  add_list(*pj, "--set", ja.sets, "KEY=VALUE", "override one config key (repeatable)");
  add_value(*pj, "--gpus", ja.gpus, "N,N,...", "GPU counts")->required();
  add_value(*pj, "--global-batch", ja.global, "SEQS", "sequences per step (default 1024)")->check(at_least(1));
  add_value(*pj, "--memory-gib", ja.memory_gib, "GIB", "memory per GPU (default 80)")->check(at_least(1));
  add_value(*pj, "--reserve-gib", ja.reserve_gib, "GIB", "kept free per GPU (default 4)")->check(at_least(0));
  add_value(*pj, "--profile", ja.profile, "FILE", "measured CUDA op profile (default: H100 reference)");
  add_value(*pj, "--comm", ja.comm, "FILE", "measured 2-GPU NCCL table for the NVLink link");
  add_switch(*pj, "--overlap", ja.overlap, "model part 2's overlap of dp/ZeRO communication");
  add_value(*pj, "--keep", ja.keep, "N", "layouts listed per GPU count (default 3)")->check(at_least(1));
  add_value(*pj, "--nvlink-fraction", ja.nvlink_fraction, "F", "of 450 GB/s reached (default 0.8)")
      ->check(in_range(0, true, 1, false));
  add_value(*pj, "--ib-fraction", ja.ib_fraction, "F", "of 50 GB/s reached (default 0.85)")
      ->check(in_range(0, true, 1, false));
  add_value(*pj, "--nvlink-alpha-us", ja.nvlink_alpha_us, "US", "per step (default 5)")->check(at_least(0));
  add_value(*pj, "--ib-alpha-us", ja.ib_alpha_us, "US", "per step (default 10)")->check(at_least(0));
  add_value(*pj, "--staging-gbs", ja.staging_gbs, "G", "host staging of pipeline messages (default 20)")
      ->check(at_least(0));
  std::string ref_json;
  CLI::App* rf = app.add_subcommand("reference-profile", "write the H100 reference profile");
  add_value(*rf, "--json", ref_json, "FILE", "where to write it")->required();
  if (!parse_args(app, argc, argv)) return 0;
  if (pr->parsed()) return predict(pa);
  if (pj->parsed()) return project(ja);
  write_text(ref_json, to_json(h100_reference_profile()), "llmpi_perfmodel reference-profile");
  return 0;
}

}  // namespace
}  // namespace llmpi::perf

int main(int argc, char** argv) {
  return llmpi::perf::tool_main("llmpi_perfmodel", llmpi::perf::run, argc, argv);
}
