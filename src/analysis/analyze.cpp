#include "analysis/analyze.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "analysis/rank_gather.h"
#include "analysis/report.h"
#include "config/config.h"
#include "core/agreement.h"
#include "core/error.h"
#include "core/file_kind.h"
#include "data/token_shard.h"
#include "parallel/communicator.h"
#include "train/paths.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Progress on rank 0, at most one line per second (and every line that differs in kind).
class ProgressLine {
 public:
  ProgressLine(std::ostream& out, bool active) : out_(out), active_(active) {}
  void operator()(const std::string& line) {
    const auto now = Clock::now();
    if (!active_ || now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    out_ << "analyze: " << line << "\n" << std::flush;
  }

 private:
  std::ostream& out_;
  bool active_;
  Clock::time_point last_{};
};

double grad_clip_of(const std::string& toml, const std::string& name) {
  try {
    return parse_config(toml, name).train.grad_clip;
  } catch (const UserError&) {
    return 0.0;
  }
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Where the report goes: --out, else RUN_DIR/analysis.
std::string report_dir(const AnalyzeOptions& opt) {
  return opt.out_dir.empty() ? (fs::path(opt.run_dir) / "analysis").string() : opt.out_dir;
}

// Token shards named by an option: the pattern matches files, and each is a readable token
// shard (its header and size; TokenShard reads no token without a vocabulary size).
void require_token_shards(const std::string& pattern, const std::string& option) {
  for (const std::string& path : expand_data_paths(pattern, option)) {  // names option and path
    try {
      const TokenShard shard(path);
    } catch (const UserError& e) {
      user_error(option, ": ", e.what());  // "<path>: not a token shard: bad magic (expected ...)"
    }
  }
}

// What the command line names explicitly must be usable, so that a typo is refused before
// any work rather than found (as a note) after the whole analysis: the run directory, the
// --eval and --train-data shards, and the report directory (absent, or a directory). Inputs
// that are only implied (the run config's data.train for memorization) stay notes.
void check_named_inputs(const AnalyzeOptions& opt) {
  require_run_directory(opt.run_dir);
  if (!opt.eval_data.empty()) require_token_shards(opt.eval_data, "--eval");
  if (!opt.train_data.empty()) require_token_shards(opt.train_data, "--train-data");
  claim_report_dir(report_dir(opt), opt.force);
}

}  // namespace

AnalyzeSummary analyze_run(const AnalyzeOptions& opt, Backend& be, MPI_Comm comm, std::ostream& out) {
  const auto t0 = Clock::now();
  const int rank = comm_rank(comm);
  // Before any work, on every rank: a refusal on any rank is thrown on all (core/agreement.h),
  // so no rank goes on into the analysis' collectives alone.
  agreed(comm, [&] { check_named_inputs(opt); });
  std::error_code ec;
  ProgressLine progress(out, rank == 0);
  AnalysisInputs in;
  in.run_dir = opt.run_dir;

  // The logbook (rank 0 only: it is small and only rank 0 writes the report).
  int has_logbook = 0;
  if (rank == 0) {
    const fs::path lb = fs::path(opt.run_dir) / "logbook.h5";
    if (fs::exists(lb, ec)) {
      try {
        in.logbook = read_logbook_file(lb.string());
        has_logbook = 1;
      } catch (const UserError& e) {
        in.notes.push_back(std::string("no training curves: ") + e.what());
      }
    } else {
      in.notes.push_back("no training curves: " + lb.string() + " does not exist (a run from before the "
                         "logbook, or it was removed)");
    }
  }
  check_mpi(MPI_Bcast(&has_logbook, 1, MPI_INT, 0, comm), "MPI_Bcast");

  if (rank == 0) out << "analyze: " << opt.run_dir << ": verifying checkpoints\n" << std::flush;
  in.series = discover_series(opt.run_dir, comm, opt.probe_samples, std::ref(progress));
  if (!has_logbook && in.series.checkpoints.empty()) {
    std::string why = opt.run_dir + ": nothing to analyze: no readable logbook.h5 and no valid checkpoint";
    if (in.series.rejected.empty() && !fs::exists(fs::path(opt.run_dir) / "checkpoints", ec) &&
        !fs::exists(fs::path(opt.run_dir) / "config.toml", ec))
      why += " (not a run directory: it has no checkpoints/ folder and no config.toml)";
    for (const SeriesProblem& p : in.series.rejected) why += "\n  " + p.path + " rejected: " + p.reason;
    if (rank == 0)
      for (const std::string& n : in.notes) why += "\n  " + n;
    user_error(why);
  }
  if (in.series.checkpoints.empty())
    in.notes.push_back("no weight dynamics, loss over checkpoints or memorization: " +
                       (fs::path(opt.run_dir) / "checkpoints").string() + " holds no valid checkpoint");
  const std::string cfg_path = (fs::path(opt.run_dir) / "config.toml").string();
  if (!in.series.checkpoints.empty())
    in.grad_clip = grad_clip_of(in.series.checkpoints.back().config_toml, in.series.checkpoints.back().path);
  else if (fs::exists(cfg_path, ec))
    in.grad_clip = grad_clip_of(read_text(cfg_path), cfg_path);

  if (!in.series.checkpoints.empty() && rank == 0)
    out << "analyze: reading the weights of " << in.series.checkpoints.size() << " checkpoint(s)\n" << std::flush;
  in.weights = weight_dynamics(in.series, comm, std::ref(progress));
  ProbeOptions po;
  po.eval_data = opt.eval_data;
  po.eval_batches = opt.eval_batches;
  po.train_data = opt.train_data;
  po.memorization = opt.probe_samples > 0;
  if (!in.series.checkpoints.empty() && (po.memorization || !po.eval_data.empty()) && rank == 0)
    out << "analyze: evaluating each checkpoint as a model" << (po.eval_data.empty() ? "" : " (loss on " + po.eval_data + ")")
        << (po.memorization ? " (memorization)" : "") << "\n" << std::flush;
  in.probes = probe_checkpoints(in.series, po, be, comm, std::ref(progress));

  AnalyzeSummary sum;
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  in.seconds = sum.seconds;
  sum.checkpoints = int64_t(in.series.checkpoints.size());
  sum.rejected = int64_t(in.series.rejected.size());
  for (const SeriesCheckpoint& c : in.series.checkpoints) sum.checkpoint_bytes += double(c.bytes);
  sum.weights_gbps = in.weights.seconds > 0 ? double(in.weights.bytes_read) / in.weights.seconds / 1e9 : 0.0;
  sum.total_gbps = sum.seconds > 0 ? sum.checkpoint_bytes / sum.seconds / 1e9 : 0.0;
  if (rank == 0) {
    if (in.logbook) {
      sum.step_rows = int64_t(in.logbook->steps.size());
      sum.events = int64_t(in.logbook->events.size());
    }
    const std::string out_dir = report_dir(opt);
    const Report report = build_report(in);
    write_report(report, opt.run_dir, out_dir);
    sum.report_path = (fs::path(out_dir) / "report.html").string();
    for (const std::string& n : report.notes) out << "analyze: note: " << n << "\n";
    char line[256];
    std::snprintf(line, sizeof line,
                  "analyze: %lld checkpoint(s) (%.1f MB, %lld rejected), %lld logbook step rows, %lld events "
                  "| weights read at %.2f GB/s | %.1f s\n",
                  (long long)sum.checkpoints, sum.checkpoint_bytes / 1e6, (long long)sum.rejected,
                  (long long)sum.step_rows, (long long)sum.events, sum.weights_gbps, sum.seconds);
    out << line << "analyze: wrote " << sum.report_path << " (" << report.sections.size() << " sections, "
        << report.tables.size() << " tables in " << out_dir << "/data)\n" << std::flush;
  }
  return sum;
}

}  // namespace llmpi
