#include "train/spike_policy.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmpi {

namespace fs = std::filesystem;

SpikePolicy::SpikePolicy(const LogbookSection& cfg)
    : cfg_(cfg), detector_({cfg.spike_window, cfg.spike_threshold, cfg.spike_warmup}) {}

StepDecision SpikePolicy::decide(int64_t step, const SpikeVerdict& v, int64_t checkpoint_before) {
  StepDecision d;
  if (!v.spike) return d;
  SpikeAction a = v.nonfinite ? cfg_.nonfinite_action : cfg_.spike_action;
  d.reason = v.nonfinite ? "non-finite loss or gradient" : "loss spike";
  if (a == SpikeAction::log) {
    d.action = StepAction::log_spike;
    return d;
  }
  if (a == SpikeAction::rollback && checkpoint_before < 0) {
    a = SpikeAction::skip;
    d.reason += " (no checkpoint before it to roll back to: skipped instead)";
  }
  d.action = a == SpikeAction::rollback ? StepAction::rollback : StepAction::skip;
  furthest_ = std::max(furthest_, step);
  if (++consecutive_ > cfg_.max_consecutive)
    user_error("step ", step, ": ", consecutive_, " spike skips/rollbacks without progress past step ",
               furthest_, " (logbook.max_consecutive = ", cfg_.max_consecutive,
               "); stopping instead of looping. Lower train.lr or raise logbook.spike_threshold, "
               "and see LOGBOOK.md for the spikes");
  return d;
}

void SpikePolicy::completed(int64_t step, const StepDecision& d, double loss, double grad_norm) {
  if (d.action == StepAction::apply) detector_.accept(loss, grad_norm);
  if (d.action == StepAction::apply || d.action == StepAction::log_spike) {
    if (step > furthest_) consecutive_ = 0;
    furthest_ = std::max(furthest_, step);
  }
}

std::vector<int64_t> SpikePolicy::skip_window(int64_t spike_step, int64_t checkpoint_step) {
  std::vector<int64_t> w;
  for (int64_t s = std::max(checkpoint_step + 1, spike_step - cfg_.rollback_skip_steps + 1); s <= spike_step; ++s) {
    w.push_back(s);
    skipped_.insert(s);
  }
  return w;
}

RunState SpikePolicy::save(int64_t segment) const {
  RunState r;
  r.segment = segment;
  r.skipped_steps.assign(skipped_.begin(), skipped_.end());
  r.spike_loss_history = detector_.loss_history();
  r.spike_grad_history = detector_.grad_history();
  r.consecutive_actions = consecutive_;
  r.furthest_step = furthest_;
  return r;
}

void SpikePolicy::restore(const RunState& checkpoint, const std::optional<RunState>& record) {
  detector_.restore(checkpoint.spike_loss_history, checkpoint.spike_grad_history);
  skipped_ = std::set<int64_t>(checkpoint.skipped_steps.begin(), checkpoint.skipped_steps.end());
  consecutive_ = checkpoint.consecutive_actions;
  furthest_ = checkpoint.furthest_step;
  if (record) {
    skipped_.insert(record->skipped_steps.begin(), record->skipped_steps.end());
    if (record->furthest_step > furthest_ ||
        (record->furthest_step == furthest_ && record->consecutive_actions > consecutive_)) {
      consecutive_ = record->consecutive_actions;
      furthest_ = record->furthest_step;
    }
  }
}

void SpikePolicy::restore_window(const RunState& checkpoint) {
  detector_.restore(checkpoint.spike_loss_history, checkpoint.spike_grad_history);
}

namespace {
fs::path record_path(const std::string& run_dir) { return fs::path(run_dir) / "rollbacks.json"; }
}  // namespace

std::optional<RunState> read_rollback_record(const std::string& run_dir) {
  const fs::path p = record_path(run_dir);
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  RunState r;
  try {
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error("not a JSON object");
    r.segment = j.at("segment").get<int64_t>();
    r.skipped_steps = j.at("skipped_steps").get<std::vector<int64_t>>();
    r.consecutive_actions = j.at("consecutive_actions").get<int64_t>();
    r.furthest_step = j.at("furthest_step").get<int64_t>();
  } catch (const std::exception& e) {
    user_error(p.string(), ": not a rollback record (", e.what(),
               "); it is written by llmpi at each rollback — remove it only if the run's "
               "rollbacks should be forgotten");
  }
  return r;
}

void write_rollback_record(const std::string& run_dir, const RunState& state) {
  const fs::path p = record_path(run_dir), tmp = p.string() + ".tmp";
  const nlohmann::json j = {{"segment", state.segment},
                            {"skipped_steps", state.skipped_steps},
                            {"consecutive_actions", state.consecutive_actions},
                            {"furthest_step", state.furthest_step}};
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(1) << "\n";
    out.close();
    if (!out) user_error(tmp.string(), ": cannot write the rollback record");
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) user_error(p.string(), ": cannot write the rollback record: ", ec.message());
}

void remove_rollback_record(const std::string& run_dir) {
  std::error_code ec;
  fs::remove(record_path(run_dir), ec);
}

}  // namespace llmpi
