#include "analysis/checkpoint_series.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/checkpoint.h"
#include "jobs/checkpoint_dir.h"
#include "analysis/rank_gather.h"

namespace llmpi {

namespace {

// A layout as a JSON object of its named fields (world_size derived, not read back).
nlohmann::json layout_json(const Layout& l) {
  nlohmann::json j = nlohmann::json::object();
  for (const Layout::Field& f : l.fields())
    if (f.name != "world_size") j[std::string(f.name)] = f.value;
  return j;
}

nlohmann::json summarize(const std::string& path, int64_t per_probe) {
  const CheckpointMeta m = read_checkpoint_meta(path);
  const DataMeta& d = m.data;
  // The samples trained on: those of recorded steps whose data a rollback did not skip.
  const std::set<int64_t> skipped(m.run.skipped_steps.begin(), m.run.skipped_steps.end());
  std::vector<int64_t> trained;
  int64_t skipped_here = 0;
  for (size_t i = 0; i < d.steps.size(); ++i) {
    if (skipped.count(d.steps[i])) {
      ++skipped_here;
      continue;
    }
    trained.insert(trained.end(), d.step_samples.begin() + int64_t(i) * d.global_batch,
                   d.step_samples.begin() + int64_t(i + 1) * d.global_batch);
  }
  std::vector<int64_t> sorted = trained;
  std::sort(sorted.begin(), sorted.end());
  const int64_t unique = int64_t(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
  std::vector<int64_t> probe;
  const int64_t n = int64_t(trained.size());
  for (int64_t k = 0; k < std::min(per_probe, n); ++k)  // evenly spread over the recorded order
    probe.push_back(trained[size_t(k * n / std::min(per_probe, n))]);
  std::error_code ec;
  return {{"path", path},
          {"step", m.step},
          {"tokens_seen", m.tokens_seen},
          {"bytes", int64_t(std::filesystem::file_size(path, ec))},
          {"layout", layout_json(m.layout)},
          {"config", m.config_toml},
          {"data_first_step", d.steps.empty() ? 0 : d.steps.front()},
          {"data_last_step", d.steps.empty() ? 0 : d.steps.back()},
          {"data_steps", int64_t(d.steps.size())},
          {"skipped_steps", skipped_here},
          {"segment", m.run.segment},
          {"samples", n},
          {"unique_samples", unique},
          {"min_sample", n ? sorted.front() : -1},
          {"max_sample", n ? sorted[size_t(unique - 1)] : -1},
          {"global_batch", d.global_batch},
          {"probe", probe}};
}

}  // namespace

void block_of(int64_t n, int rank, int size, int64_t& first, int64_t& last) {
  first = n * rank / size;
  last = n * (rank + 1) / size;
}

CheckpointSeries discover_series(const std::string& run_dir, MPI_Comm comm,
                                 int64_t probe_per_checkpoint, const Progress& progress) {
  const int rank = comm_rank(comm), size = comm_size(comm);
  std::vector<std::string> paths;
  if (rank == 0)
    for (const CheckpointFile& f : list_checkpoints(run_dir)) paths.push_back(f.path);
  paths = nlohmann::json::parse(bcast_string(nlohmann::json(paths).dump(), 0, comm)).get<std::vector<std::string>>();

  // Round-robin: verify (digest + structure, no tensor pass: the analysis checks every
  // tensor's checksum as it streams it) and summarize.
  nlohmann::json mine = nlohmann::json::array();
  for (size_t i = size_t(rank); i < paths.size(); i += size_t(size)) {
    if (rank == 0 && progress)
      progress("verifying checkpoint " + std::to_string(i + 1) + "/" + std::to_string(paths.size()) +
               " (" + std::filesystem::path(paths[i]).filename().string() + ")");
    nlohmann::json entry;
    const std::string why = verify_checkpoint(paths[i], MPI_COMM_NULL, /*tensors=*/false);
    if (why.empty()) {
      try {
        entry = summarize(paths[i], probe_per_checkpoint);
      } catch (const UserError& e) {
        entry = {{"path", paths[i]}, {"reason", e.what()}};
      }
    } else {
      entry = {{"path", paths[i]}, {"reason", why}};
    }
    mine.push_back(std::move(entry));
  }
  // Every rank's entries to every rank (small: no tensor data, a few samples each).
  nlohmann::json all = nlohmann::json::array();
  for (int r = 0; r < size; ++r)
    for (auto& e : nlohmann::json::parse(bcast_string(r == rank ? mine.dump() : "", r, comm)))
      all.push_back(std::move(e));

  CheckpointSeries s;
  for (const auto& e : all) {
    if (e.contains("reason")) {
      s.rejected.push_back({e["path"], e["reason"]});
      continue;
    }
    SeriesCheckpoint c;
    c.path = e["path"];
    c.step = e["step"];
    c.tokens_seen = e["tokens_seen"];
    c.bytes = e["bytes"];
    for (const auto& [name, value] : e["layout"].items()) c.layout.set(name, value.get<int64_t>());
    c.config_toml = e["config"];
    c.data_first_step = e["data_first_step"];
    c.data_last_step = e["data_last_step"];
    c.data_steps = e["data_steps"];
    c.skipped_steps = e["skipped_steps"];
    c.segment = e["segment"];
    c.samples = e["samples"];
    c.unique_samples = e["unique_samples"];
    c.min_sample = e["min_sample"];
    c.max_sample = e["max_sample"];
    c.global_batch = e["global_batch"];
    c.probe_samples = e["probe"].get<std::vector<int64_t>>();
    s.checkpoints.push_back(std::move(c));
  }
  std::sort(s.checkpoints.begin(), s.checkpoints.end(),
            [](const SeriesCheckpoint& a, const SeriesCheckpoint& b) { return a.step < b.step; });
  std::sort(s.rejected.begin(), s.rejected.end(),
            [](const SeriesProblem& a, const SeriesProblem& b) { return a.path < b.path; });
  return s;
}

}  // namespace llmpi
