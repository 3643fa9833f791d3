#pragma once
// A run's configuration: the TOML file (configs/*.toml) after `--set` overrides, every key
// validated. Sections and keys are documented in docs/config.md; defaults are below.
// Invariant of a Config returned by load_config/parse_config: every field is in range and
// consistent (n_head | d_model, n_kv_head | n_head, tp | n_head, seq_len <= max_seq_len, ...),
// derived defaults are filled in (n_kv_head, d_ff, tied_embeddings), and `source_text` is
// to_toml(*this), so a checkpoint that records it can rebuild the same Config.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"
#include "model/lora_targets.h"

namespace llmpi {

enum class LrDecay : uint8_t { cosine, linear, constant };
// [train] objective: lm = next-token prediction on every token (pre-training); sft = only on
// the tokens the loss mask selects, rows of whole documents; dpo = direct preference
// optimisation on preference pairs ([dpo], docs/finetuning.md).
enum class Objective : uint8_t { lm, sft, dpo };
// [dpo] loss: the DPO loss variant (train/dpo_loss.h).
enum class DpoLoss : uint8_t { sigmoid, ipo };
// [train] cuda_graphs: whether a CUDA run replays each micro-batch's forward and backward
// from a recording (parallel/step_graphs.h): auto = where the layout allows it, on = the same
// but an error where it does not, off = never.
enum class CudaGraphs : uint8_t { automatic, on, off };

struct TrainSection {
  uint64_t seed = 1234;
  int64_t steps = 0;              // optimizer steps to run (> 0)
  int64_t batch_size = 0;         // sequences per micro-batch per data-parallel rank (B)
  int64_t seq_len = 0;            // tokens per sequence (T <= model.max_seq_len)
  double lr = 3e-4;               // peak learning rate
  double min_lr = 0.0;            // floor of the decay (<= lr)
  int64_t warmup_steps = 0;       // linear warm-up from 0 to lr
  LrDecay decay = LrDecay::cosine;
  int64_t decay_steps = 0;        // end of the decay; 0 means `steps`
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  // Not a TOML key: set by programs. f64 makes a host run an f64 numerical reference (layout
  // tests); checkpoints and model files hold f32 and refuse it.
  DType master_dtype = DType::f32;
  double grad_clip = 1.0;         // global-norm clip; 0 disables
  int64_t log_every = 1;          // print/log a step line every k steps
  int64_t eval_every = 0;         // validation every k steps; 0 = only at the end
  int64_t eval_batches = 8;       // micro-batches per validation
  // A fresh run's initial weights: an llmpi model/checkpoint file or run directory, or a
  // Hugging Face model directory (train/init_from.h); empty = the seeded init. A resumed
  // run ignores it (the checkpoint has the weights).
  std::string init_from;
  Objective objective = Objective::lm;
  // sft: several documents per row (block-diagonal attention, positions restarting); false:
  // one document per row, the rest padding.
  bool packing = true;
  CudaGraphs cuda_graphs = CudaGraphs::automatic;
  // [train] recompute ("none" | "selective" | "full", activation recomputation) is read into
  // Config::model.recompute, where the Transformer sees it (model/model_config.h).

  bool operator==(const TrainSection&) const = default;
};

struct DataSection {
  std::string train;      // token-shard file(s): a path or a glob (relative to the working dir)
  std::string val;        // token-shard file or glob; empty = no validation
  std::string tokenizer;  // tokenizer file for sample/eval; may be empty

  bool operator==(const DataSection&) const = default;
};

struct ParallelSection {
  int64_t tp = 1, pp = 1, dp = 1;
  int zero_stage = 0;             // 0..3
  int64_t micro_batches = 1;      // micro-batches per step per dp rank (accumulation/pipeline)
  bool sequence_parallel = false; // needs tp > 1
  int64_t virtual_stages = 1;     // interleaved pipeline chunks per stage
  // Layers per pipeline chunk, in global chunk order (pp × virtual_stages entries summing to
  // n_layer); empty = the balanced split (parallel/pipeline_split.h).
  std::vector<int64_t> stage_layers;
  // Data-parallel gradient reduction (parallel/grad_reducer.h): buckets of at most this many
  // gradient elements, each started during the backward once final (overlap) or all after it.
  bool overlap_grad_reduce = true;
  int64_t grad_bucket_elems = int64_t{1} << 18;

  bool operator==(const ParallelSection&) const = default;
};

struct CheckpointSection {
  int64_t every = 0;              // save every k steps; 0 = only at the end
  int64_t keep_last = 3;          // keep the newest k regular checkpoints
  int64_t keep_every = 0;         // checkpoints at multiples of k are never deleted; 0 = none
  bool log_spaced = false;        // also save at steps 1, 2, 4, ..., 512 (Pythia)

  bool operator==(const CheckpointSection&) const = default;
};

// The signal that asks a run to stop after the current step and save (besides SIGTERM and
// SIGINT, always caught): jobs/stop_signals.h.
enum class StopSignal : uint8_t { usr1, usr2, term };

struct RunSection {
  std::string dir = "runs/default";  // run directory (relative: to the working directory)
  StopSignal stop_signal = StopSignal::usr1;
  // Stop and save before this time: "" (none), a local time "YYYY-MM-DDTHH:MM[:SS]", or a
  // duration from the start of the process ("90m", "2h", "45s", "1:30:00"). Parsed and
  // checked by jobs/deadline.h. The Slurm job's own end time is used as well.
  std::string deadline;
  double deadline_margin = 30.0;  // seconds kept besides the measured save and step times

  bool operator==(const RunSection&) const = default;
};

// [lora]: low-rank adapters (model/lora.h) beside frozen base weights; rank 0 = none (every
// weight trains). Module names: q, k, v, o (attention), gate (llama), up, down (MLP), head.
struct LoraSection {
  int64_t rank = 0;
  double alpha = 16.0;       // scale s = alpha / rank (rslora: alpha / sqrt(rank))
  bool rslora = false;
  double dropout = 0.0;      // only 0 is supported yet (config_checks.cpp refuses others)
  std::vector<std::string> target_modules = {"q", "v"};
  // The frozen base's storage: "auto" (the compute dtype: bf16 on CUDA, the master dtype on
  // the host) or "nf4" (QLoRA: 4-bit NormalFloat with double-quantised scales, quant/nf4.h;
  // the targeted maps' base weights only, dequantised on the fly).
  std::string base_dtype = "auto";

  bool enabled() const { return rank > 0; }
  LoraSpec spec() const { return {rank, alpha, rslora, target_modules}; }
  bool nf4_base() const { return enabled() && base_dtype == "nf4"; }
  bool operator==(const LoraSection&) const = default;
};

// [dpo]: the preference objective (train/dpo_loss.h, train/dpo_objective.h).
struct DpoSection {
  double beta = 0.1;             // > 0: strength of the KL tie to the reference model
  DpoLoss loss = DpoLoss::sigmoid;
  double label_smoothing = 0.0;  // in [0, 0.5), sigmoid only (conservative DPO)

  bool operator==(const DpoSection&) const = default;
};

// [eval]: fixed prompts whose greedy generations are printed at every validation
// (train/eval_prompts.h); fine-tuning runs render them through the data's chat template.
struct EvalSection {
  std::vector<std::string> prompts;
  int64_t max_new_tokens = 32;

  bool operator==(const EvalSection&) const = default;
};

// The hang watchdog (jobs/watchdog.h): a phase that makes no progress for longer than its
// limit ends the job. Limits are floors; each grows to factor × the longest time observed.
struct WatchdogSection {
  bool enabled = true;
  double startup_timeout = 1800.0;  // seconds from start-up to the end of the first step
  double step_timeout = 300.0;      // floor for one step (and one validation)
  double save_timeout = 600.0;      // floor for one checkpoint save
  double factor = 10.0;             // limit = max(floor, factor × longest observed)

  bool operator==(const WatchdogSection&) const = default;
};

// What the logbook does with a step the spike detector flags (train/spike_detector.h).
enum class SpikeAction : uint8_t { log, skip, rollback };

// [logbook]: telemetry and loss-spike handling (docs/logbook-format.md, docs/config.md).
struct LogbookSection {
  bool enabled = true;            // write <run.dir>/logbook.h5 and LOGBOOK.md
  double flush_every_s = 5.0;     // seconds between flushes (0 = after every step)
  int64_t layer_stats_every = 100;  // per-layer statistics every k steps; 0 = never
  int64_t spike_window = 100;     // steps of history for the z-scores
  double spike_threshold = 6.0;   // z-score of loss or gradient norm that makes a spike
  int64_t spike_warmup = 20;      // steps of history before spikes are detected
  SpikeAction spike_action = SpikeAction::log;
  SpikeAction nonfinite_action = SpikeAction::skip;  // skip or rollback (never log: NaN updates)
  int64_t rollback_skip_steps = 10;  // steps of data skipped after a rollback, ending at the spike
  int64_t max_consecutive = 5;    // skips/rollbacks in a row before the run gives up
  // Test hook (documented, off by default): steps whose gradient is made NaN, and steps whose
  // loss the spike detector sees multiplied by 10 — on the last rank only, so the
  // decision must travel to every rank.
  std::vector<int64_t> test_nan_grad_steps;
  std::vector<int64_t> test_loss_spike_steps;
  // Test hook: world rank 0 kills itself (SIGKILL) as it starts training a step after having
  // trained this many steps in this process (0 = never): a job killed at a known point.
  int64_t test_kill_after_steps = 0;

  bool operator==(const LogbookSection&) const = default;
};

struct Config {
  std::string source_path;   // the TOML file it came from
  std::string source_text;   // the TOML text after overrides (recorded in checkpoints)
  ModelConfig model;
  TrainSection train;
  DataSection data;
  ParallelSection parallel;
  CheckpointSection checkpoint;
  RunSection run;
  LoraSection lora;
  WatchdogSection watchdog;
  LogbookSection logbook;
  DpoSection dpo;
  EvalSection eval;
};

// Reads `path`, applies overrides ("section.key=value", TOML value syntax; a bare word is
// taken as a string), validates every key. Throws UserError naming the file, line, key and
// the expected value on any problem (unknown key, wrong type, out of range, inconsistent).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same, from TOML text; `name` is used in messages in place of a path.
Config parse_config(const std::string& text, const std::string& name,
                    const std::vector<std::string>& overrides = {});

// The validated configuration written back as TOML (round-trips through parse_config).
std::string to_toml(const Config& c);

}  // namespace llmpi
