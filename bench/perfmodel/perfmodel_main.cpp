// llmpi_perfmodel: the performance model's command line (docs/scaling.md).
//   predict CONFIG [--set k=v ...] --profile P.json [--profile ...] (--comm C.json | --cluster)
//           [--device host|cuda] [--overlap] [--staging-gbs G]
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

#include "bench/perfmodel/h100_reference.h"
#include "bench/perfmodel/layout_search.h"
#include "bench/perfmodel/tool_io.h"
#include "cli/args.h"
#include "config/config.h"
#include "core/error.h"

namespace llmpi::perf {
namespace {

constexpr const char* kHelp =
    "usage: llmpi_perfmodel predict CONFIG [--set k=v ...] --profile P.json [--profile ...]\n"
    "                       (--comm C.json | --cluster) [--device host|cuda] [--overlap] [--staging-gbs G]\n"
    "       llmpi_perfmodel project CONFIG [--set k=v ...] --gpus 8,16,... [--global-batch 1024]\n"
    "                       [--memory-gib 80] [--reserve-gib 4] [--profile P.json] [--comm C.json]\n"
    "                       [--overlap] [--keep 3] [--nvlink-fraction 0.8] [--ib-fraction 0.85]\n"
    "                       [--nvlink-alpha-us 5] [--ib-alpha-us 10] [--staging-gbs 20]\n"
    "       llmpi_perfmodel reference-profile --json FILE\n";

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

Device device_of(const std::string& d) {
  if (d == "host") return Device::host;
  if (d == "cuda") return Device::cuda;
  user_error("--device: expected host or cuda, got '", d, "'");
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

int predict(Args& a) {
  const auto sets = a.get_all("--set");
  std::vector<OpProfile> profiles;
  for (const std::string& f : a.get_all("--profile")) profiles.push_back(load_profile(f));
  const std::string comm = a.get("--comm", "");
  const bool cluster = a.flag("--cluster");
  const Device dev = device_of(a.get("--device", "host"));
  ModelOptions o;
  o.device = dev;
  o.overlap = a.flag("--overlap");
  o.staging_bytes_per_s = a.get_double("--staging-gbs", 0) * 1e9;
  if (dev == Device::cuda) o.peak_flops = kH100Bf16Dense;
  const auto pos = a.positionals();
  a.finish();
  if (pos.size() != 1) user_error("predict: expected one CONFIG");
  if (profiles.empty()) user_error("predict: needs --profile (llmpi_op_profile --json)");
  if (comm.empty() == !cluster) user_error("predict: give exactly one of --comm FILE and --cluster");
  const Config cfg = load_config(pos[0], sets);
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

int project(Args& a) {
  const auto sets = a.get_all("--set");
  const std::vector<int64_t> gpus = int_list(a.require("--gpus"), "--gpus");
  const int64_t global = a.get_int("--global-batch", 1024);
  const double limit = (a.get_double("--memory-gib", 80) - a.get_double("--reserve-gib", 4)) *
                       double(int64_t{1} << 30);
  const std::string profile = a.get("--profile", "");
  const std::string comm = a.get("--comm", "");
  ModelOptions o;
  o.device = Device::cuda;
  o.peak_flops = kH100Bf16Dense;
  o.overlap = a.flag("--overlap");
  o.staging_bytes_per_s = a.get_double("--staging-gbs", 20) * 1e9;
  const size_t keep = size_t(a.get_int("--keep", 3));
  Cluster k = h100_cluster(a.get_double("--nvlink-fraction", 0.8), a.get_double("--ib-fraction", 0.85),
                           a.get_double("--nvlink-alpha-us", 5) * 1e-6, a.get_double("--ib-alpha-us", 10) * 1e-6);
  const auto pos = a.positionals();
  a.finish();
  if (pos.size() != 1) user_error("project: expected one CONFIG");
  if (limit <= 0) user_error("project: --memory-gib must exceed --reserve-gib");
  if (!comm.empty()) {  // a measured 2-GPU NCCL table calibrates the NVLink link
    const CommTable t = load_comm(comm);
    const AlphaBeta f = fit_alpha_beta(t.points.at(Coll::all_reduce));
    // all_reduce of 2 ranks: 2·α + S/B (link_seconds with p = 2).
    k.intra = {f.alpha / 2, f.beta > 0 ? 1.0 / f.beta : k.intra.bytes_per_s};
  }
  const Config cfg = load_config(pos[0], sets);
  const OpProfile prof = profile.empty() ? h100_reference_profile() : load_profile(profile);
  const CommCost cost(k);
  std::printf("model %s: %lld layers, width %lld, %lld:%lld heads, FFN %lld, vocab %lld, T %lld; "
              "global batch %lld sequences; %.0f GiB per GPU usable\n",
              pos[0].c_str(), (long long)cfg.model.n_layer, (long long)cfg.model.d_model,
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

int reference_profile(Args& a) {
  const std::string json = a.require("--json");
  a.finish();
  write_text(json, to_json(h100_reference_profile()), "llmpi_perfmodel reference-profile");
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::printf("%s", kHelp);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  Args a(std::vector<std::string>(argv + 2, argv + argc), "llmpi_perfmodel " + cmd);
  if (cmd == "predict") return predict(a);
  if (cmd == "project") return project(a);
  if (cmd == "reference-profile") return reference_profile(a);
  user_error("llmpi_perfmodel: unknown command '", cmd, "' (expected predict, project or reference-profile)");
}

}  // namespace
}  // namespace llmpi::perf

int main(int argc, char** argv) {
  return llmpi::perf::tool_main("llmpi_perfmodel", llmpi::perf::run, argc, argv);
}
