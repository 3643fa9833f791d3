// Cross-key rules of a configuration (the list is in config_checks.h). Each error is located
// at the key the rule is about; when that key was not written (a default), at a related key.
#include "config/config_checks.h"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_schema.h"
#include "config/did_you_mean.h"
#include "config/layout_rules.h"

namespace llmpi::config {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// The linear maps an adapter can sit beside, by the names of model/param_layout.cpp.
constexpr std::array<std::string_view, 7> kLoraModules = {"q", "k", "v", "o", "gate", "up", "down"};

std::string lora_module_list() {
  std::string s;
  for (std::string_view m : kLoraModules) s += (s.empty() ? "" : ", ") + std::string(m);
  return s;
}

// [lora]: a section needs its rank; with rank > 0, the modules are known, distinct and in the
// model, dropout is 0, and the layout is one the adapters support yet.
void check_lora(const Config& c, const Origins& o, Diagnostics& d) {
  const LoraSection& l = c.lora;
  auto fail = [&](const std::string& key, const std::string& what, const std::string& expected) {
    d.error(o.of(key, "lora"), key, what, expected);
  };
  if (o.given("lora") && !o.given("lora.rank"))
    fail("lora.rank", "missing from [lora]",
         "an integer >= 1 (the adapters' rank), or 0 for no adapters");
  if (!l.enabled()) return;
  if (l.dropout != 0.0)
    fail("lora.dropout", format_double(l.dropout) + " is not supported yet",
         "0 (adapters train without dropout)");
  const std::string modules = "module names among " + lora_module_list();
  if (l.target_modules.empty()) fail("lora.target_modules", "an empty list", "one or more " + modules);
  const std::vector<std::string> known(kLoraModules.begin(), kLoraModules.end());
  for (size_t i = 0; i < l.target_modules.size(); ++i) {
    const std::string& m = l.target_modules[i];
    const std::string at = "element " + str(int64_t(i)) + ": " + quote_toml_string(m);
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      std::string what = at + " is not a module name";
      if (auto s = did_you_mean(m, known)) what += " (did you mean \"" + *s + "\"?)";
      fail("lora.target_modules", what, modules);
    } else if (std::find(l.target_modules.begin(), l.target_modules.begin() + i, m) !=
               l.target_modules.begin() + i) {
      fail("lora.target_modules", at + " is listed twice", "each module at most once");
    } else if (m == "gate" && c.model.arch != Arch::llama) {
      fail("lora.target_modules", at + " with model.arch = \"gpt2\" (no gate projection)",
           "q, k, v, o, up or down for arch \"gpt2\"");
    }
  }
  const ParallelSection& p = c.parallel;
  const std::string layout = " (adapters are supported on a single model replica per rank, "
                             "without tensor or pipeline parallelism or ZeRO-3, yet)";
  if (p.tp > 1) fail("lora.rank", "adapters with parallel.tp = " + str(p.tp), "tp = 1" + layout);
  if (p.pp > 1) fail("lora.rank", "adapters with parallel.pp = " + str(p.pp), "pp = 1" + layout);
  if (p.zero_stage == 3)
    fail("lora.rank", "adapters with parallel.zero_stage = 3", "zero_stage 0, 1 or 2" + layout);
}

// [dpo]: only with objective = "dpo"; label smoothing is the sigmoid loss's.
void check_dpo(const Config& c, const Origins& o, Diagnostics& d) {
  const DpoSection& p = c.dpo;
  if (c.train.objective != Objective::dpo) {
    // A written config (to_toml) has every section, so only values that differ count.
    if (o.given("dpo") && !(p == DpoSection{}))
      d.error(o.of("dpo", "train.objective"), "dpo", "a [dpo] section with train.objective = \"" +
              std::string(c.train.objective == Objective::lm ? "lm" : "sft") + "\"",
              "train.objective = \"dpo\" (or no [dpo] section)");
    return;
  }
  if (p.loss == DpoLoss::ipo && p.label_smoothing > 0)
    d.error(o.of("dpo.label_smoothing", "dpo.loss"), "dpo.label_smoothing",
            format_double(p.label_smoothing) + " with dpo.loss = \"ipo\"",
            "0 (label smoothing applies to the sigmoid loss only)");
  if (c.lora.enabled())
    d.error(o.of("lora.rank", "train.objective"), "lora.rank",
            str(c.lora.rank) + " with train.objective = \"dpo\"",
            "0: DPO with adapters (reference = the base with adapters disabled) is not wired yet");
}

// [eval]: prompts are generated on one rank from the whole model, with a tokenizer.
void check_eval(const Config& c, const Origins& o, Diagnostics& d) {
  const EvalSection& e = c.eval;
  if (e.prompts.empty()) return;
  for (size_t i = 0; i < e.prompts.size(); ++i)
    if (e.prompts[i].empty())
      d.error(o.of("eval.prompts", "eval"), "eval.prompts",
              "entry " + str(int64_t(i) + 1) + " is an empty string", "non-empty prompts");
  if (c.data.tokenizer.empty())
    d.error(o.of("eval.prompts", "eval"), "eval.prompts",
            "given without data.tokenizer", "data.tokenizer naming the tokenizer to encode them");
  if (c.parallel.tp > 1 || c.parallel.pp > 1)
    d.error(o.of("eval.prompts", "eval"), "eval.prompts",
            "with parallel.tp = " + str(c.parallel.tp) + ", pp = " + str(c.parallel.pp),
            "tp = pp = 1 (generation runs on one rank from the dp-gathered model; not yet "
            "across tensor or pipeline shards)");
}

}  // namespace

void check_consistency(const Config& c, const Origins& o, Diagnostics& d) {
  const ModelConfig& m = c.model;
  const TrainSection& t = c.train;
  const ParallelSection& p = c.parallel;
  auto fail = [&](const std::string& key, const std::string& fallback, const std::string& what,
                  const std::string& expected) { d.error(o.of(key, fallback), key, what, expected); };

  // [train] fine-tuning
  check_dpo(c, o, d);
  check_eval(c, o, d);

  // [model]
  if (m.arch == Arch::gpt2 && m.n_kv_head != m.n_head)
    fail("model.n_kv_head", "model.arch",
         str(m.n_kv_head) + " differs from model.n_head = " + str(m.n_head),
         "n_kv_head == n_head for arch \"gpt2\" (grouped-query attention needs arch \"llama\")");
  if (m.d_model % m.n_head != 0)
    fail("model.n_head", "model.d_model",
         str(m.n_head) + " does not divide model.d_model = " + str(m.d_model),
         "a divisor of d_model (head_dim = d_model / n_head)");
  else if (m.arch == Arch::llama && m.head_dim() % 2 != 0)
    fail("model.n_head", "model.d_model",
         "head_dim = d_model / n_head = " + str(m.d_model) + " / " + str(m.n_head) + " = " +
             str(m.head_dim()) + " is odd",
         "an even head_dim for arch \"llama\" (RoPE rotates pairs of dimensions)");
  if (m.n_head % m.n_kv_head != 0)
    fail("model.n_kv_head", "model.n_head",
         str(m.n_kv_head) + " does not divide model.n_head = " + str(m.n_head),
         "a divisor of n_head (each kv head serves n_head / n_kv_head query heads)");

  // [train]
  if (t.seq_len > m.max_seq_len)
    fail("train.seq_len", "model.max_seq_len",
         str(t.seq_len) + " exceeds model.max_seq_len = " + str(m.max_seq_len),
         "an integer in 1.." + str(m.max_seq_len));
  if (t.min_lr > t.lr)
    fail("train.min_lr", "train.lr",
         format_double(t.min_lr) + " exceeds train.lr = " + format_double(t.lr),
         "a number in [0, lr]");
  if (t.warmup_steps > t.steps)
    fail("train.warmup_steps", "train.steps",
         str(t.warmup_steps) + " exceeds train.steps = " + str(t.steps),
         "an integer in 0.." + str(t.steps));
  else if (t.decay_steps > 0 && t.decay_steps < t.warmup_steps)
    fail("train.decay_steps", "train.warmup_steps",
         str(t.decay_steps) + " is less than train.warmup_steps = " + str(t.warmup_steps),
         "0 (decay until steps) or an integer >= warmup_steps");

  // [parallel]: the layout rules (config/layout_rules.h), each located at its key.
  for (LayoutRule r : broken_layout_rules(LayoutFacts::of(c))) switch (r) {
      case LayoutRule::world_size: break;  // the job's ranks are not known here
      case LayoutRule::tp_heads:
        fail("parallel.tp", "model.n_head", str(p.tp) + " does not divide model.n_head = " + str(m.n_head),
             "a divisor of n_head (each tensor-parallel rank holds n_head / tp heads)");
        break;
      case LayoutRule::tp_kv_heads:
        fail("parallel.tp", "model.n_kv_head",
             str(p.tp) + " does not divide model.n_kv_head = " + str(m.kv_heads()),
             "a divisor of n_kv_head (each tensor-parallel rank holds whole kv heads) or a "
             "multiple of it (each kv head replicated on tp / n_kv_head ranks)");
        break;
      case LayoutRule::tp_d_ff:
        fail("parallel.tp", "model.d_ff", str(p.tp) + " does not divide model.d_ff = " + str(m.d_ff),
             "a divisor of d_ff (the MLP is split by columns over the tensor-parallel group)");
        break;
      case LayoutRule::tp_vocab:
        fail("parallel.tp", "model.vocab_size",
             str(p.tp) + " exceeds model.vocab_size = " + str(m.vocab_size),
             "tp <= vocab_size (each tensor-parallel rank holds a slab of the vocabulary)");
        break;
      case LayoutRule::sp_needs_tp:
        fail("parallel.sequence_parallel", "parallel.tp", "true with parallel.tp = 1",
             "tp > 1 (sequence parallelism splits activations over the tensor-parallel group), "
             "or sequence_parallel = false");
        break;
      case LayoutRule::sp_rows:
        fail("parallel.sequence_parallel", "parallel.tp",
             "true with train.batch_size * train.seq_len = " + str(t.batch_size) + " * " +
                 str(t.seq_len) + " = " + str(t.batch_size * t.seq_len) +
                 " token rows, not divisible by parallel.tp = " + str(p.tp),
             "batch_size * seq_len divisible by tp (each tensor-parallel rank holds an equal "
             "share of a micro-batch's token rows)");
        break;
      case LayoutRule::virtual_stages_need_pp:
        fail("parallel.virtual_stages", "parallel.pp", str(p.virtual_stages) + " with parallel.pp = 1",
             "virtual_stages = 1 without pipeline parallelism, or pp > 1");
        break;
      case LayoutRule::interleaved_micro_batches:
        fail("parallel.micro_batches", "parallel.virtual_stages",
             str(p.micro_batches) + " is not a multiple of parallel.pp = " + str(p.pp),
             "a multiple of pp for the interleaved pipeline schedule (virtual_stages > 1)");
        break;
      case LayoutRule::chunks_have_layers:
        fail("parallel.pp", "parallel.virtual_stages",
             "pp * virtual_stages = " + str(p.pp) + " * " + str(p.virtual_stages) + " = " +
                 str(p.pp * p.virtual_stages) + " exceeds model.n_layer = " + str(m.n_layer),
             "pp * virtual_stages <= n_layer (each pipeline chunk holds at least one layer)");
        break;
      case LayoutRule::stage_layers_count:
        fail("parallel.stage_layers", "parallel.pp",
             str(int64_t(p.stage_layers.size())) + " entries for pp * virtual_stages = " +
                 str(p.pp) + " * " + str(p.virtual_stages) + " = " +
                 str(p.pp * p.virtual_stages) + " pipeline chunks",
             "one layer count per pipeline chunk (or no stage_layers: a balanced split)");
        break;
      case LayoutRule::stage_layers_sum: {
        int64_t sum = 0;
        for (int64_t n : p.stage_layers) sum += n;
        fail("parallel.stage_layers", "model.n_layer",
             "the layer counts sum to " + str(sum) + ", not model.n_layer = " + str(m.n_layer),
             "layer counts summing to n_layer");
        break;
      }
      case LayoutRule::zero3_without_pp:
        fail("parallel.zero_stage", "parallel.pp", "3 with parallel.pp = " + str(p.pp),
             "zero_stage 0, 1 or 2 with pipeline parallelism (ZeRO-3 gathers a layer before "
             "each use, which a pipeline stage repeats for every micro-batch), or pp = 1");
        break;
    }

  check_lora(c, o, d);

  // [checkpoint]
  const CheckpointSection& k = c.checkpoint;
  if (k.keep_every > 0 && k.every > 0 && k.keep_every % k.every != 0)
    fail("checkpoint.keep_every", "checkpoint.every",
         str(k.keep_every) + " is not a multiple of checkpoint.every = " + str(k.every),
         "a multiple of every, so that the checkpoints to keep are saved at all");

  // [logbook]
  const LogbookSection& l = c.logbook;
  if (l.spike_warmup > l.spike_window)
    fail("logbook.spike_warmup", "logbook.spike_window",
         str(l.spike_warmup) + " exceeds logbook.spike_window = " + str(l.spike_window),
         "an integer in 2.." + str(l.spike_window) + " (the history needed fits in the window)");
  if (l.nonfinite_action == SpikeAction::log)
    fail("logbook.nonfinite_action", "logbook.nonfinite_action", "\"log\" would apply a NaN update",
         "\"skip\" or \"rollback\"");
}

}  // namespace llmpi::config
