// The schema table: every key of every section, with its field, presence and bounds.
#include "config/config_schema.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "core/error.h"

namespace llmpi::config {

namespace {

// FIELD(model.vocab_size) -> a FieldRef<int64_t> reaching c.model.vocab_size.
#define FIELD(member) +[](Config& c) -> decltype((c.member)) { return c.member; }

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Bounds at_least(double lo) { return {lo, kInf, false, false}; }
constexpr Bounds above(double lo) { return {lo, kInf, true, false}; }
constexpr Bounds between(double lo, double hi) { return {lo, hi, false, false}; }
constexpr Bounds half_open(double lo, double hi) { return {lo, hi, false, true}; }
// A model size: token ids are 32-bit, and products of sizes (4 * d_model, seq_len + 1, shapes)
// must stay far from 64-bit overflow (d_model = 2^62 made the default d_ff 0).
constexpr Bounds model_size() { return between(1, 2147483647.0); }

constexpr Presence kOptional = Presence::optional;
constexpr Presence kRequired = Presence::required;
constexpr Presence kDerived = Presence::derived;

const std::array<std::string_view, 11> kSections = {
    "model", "train",   "data", "parallel", "checkpoint", "run",
    "watchdog", "logbook", "lora", "dpo",     "eval"};

const ConfigKey kKeys[] = {
    // [model]
    {"model", "arch", FIELD(model.arch)},
    {"model", "vocab_size", FIELD(model.vocab_size), kRequired, model_size()},
    {"model", "n_layer", FIELD(model.n_layer), kRequired, model_size()},
    {"model", "n_head", FIELD(model.n_head), kRequired, model_size()},
    {"model", "n_kv_head", FIELD(model.n_kv_head), kDerived, model_size()},
    {"model", "d_model", FIELD(model.d_model), kRequired, model_size()},
    {"model", "d_ff", FIELD(model.d_ff), kDerived, model_size()},
    {"model", "max_seq_len", FIELD(model.max_seq_len), kRequired, model_size()},
    {"model", "rope_theta", FIELD(model.rope_theta), kOptional, above(0)},
    {"model", "norm_eps", FIELD(model.norm_eps), kOptional, above(0)},
    {"model", "init_std", FIELD(model.init_std), kOptional, above(0)},
    {"model", "tied_embeddings", FIELD(model.tied_embeddings), kDerived},
    // [train]
    {"train", "seed", FIELD(train.seed), kOptional, at_least(0)},
    {"train", "steps", FIELD(train.steps), kRequired, at_least(1)},
    {"train", "batch_size", FIELD(train.batch_size), kRequired, at_least(1)},
    {"train", "seq_len", FIELD(train.seq_len), kRequired, at_least(1)},
    {"train", "lr", FIELD(train.lr), kOptional, above(0)},
    {"train", "min_lr", FIELD(train.min_lr), kOptional, at_least(0)},
    {"train", "warmup_steps", FIELD(train.warmup_steps), kOptional, at_least(0)},
    {"train", "decay", FIELD(train.decay)},
    {"train", "decay_steps", FIELD(train.decay_steps), kOptional, at_least(0)},
    {"train", "weight_decay", FIELD(train.weight_decay), kOptional, at_least(0)},
    {"train", "beta1", FIELD(train.beta1), kOptional, half_open(0, 1)},
    {"train", "beta2", FIELD(train.beta2), kOptional, half_open(0, 1)},
    {"train", "eps", FIELD(train.eps), kOptional, above(0)},
    {"train", "grad_clip", FIELD(train.grad_clip), kOptional, at_least(0)},
    {"train", "log_every", FIELD(train.log_every), kOptional, at_least(1)},
    {"train", "eval_every", FIELD(train.eval_every), kOptional, at_least(0)},
    {"train", "eval_batches", FIELD(train.eval_batches), kOptional, at_least(1)},
    // A [train] key that sets a model field: the Transformer reads it from its ModelConfig.
    {"train", "recompute", FIELD(model.recompute)},
    {"train", "init_from", FIELD(train.init_from)},
    {"train", "objective", FIELD(train.objective)},
    {"train", "packing", FIELD(train.packing)},
    {"train", "cuda_graphs", FIELD(train.cuda_graphs)},
    // [data]
    {"data", "train", FIELD(data.train), kRequired, {}, /*non_empty=*/true},
    {"data", "val", FIELD(data.val)},
    {"data", "tokenizer", FIELD(data.tokenizer)},
    // [parallel]
    {"parallel", "tp", FIELD(parallel.tp), kOptional, at_least(1)},
    {"parallel", "pp", FIELD(parallel.pp), kOptional, at_least(1)},
    {"parallel", "dp", FIELD(parallel.dp), kOptional, at_least(1)},
    {"parallel", "zero_stage", FIELD(parallel.zero_stage), kOptional, between(0, 3)},
    {"parallel", "micro_batches", FIELD(parallel.micro_batches), kOptional, at_least(1)},
    {"parallel", "sequence_parallel", FIELD(parallel.sequence_parallel)},
    {"parallel", "virtual_stages", FIELD(parallel.virtual_stages), kOptional, at_least(1)},
    {"parallel", "stage_layers", FIELD(parallel.stage_layers), kOptional, at_least(1)},
    {"parallel", "overlap_grad_reduce", FIELD(parallel.overlap_grad_reduce)},
    {"parallel", "grad_bucket_elems", FIELD(parallel.grad_bucket_elems), kOptional, at_least(1)},
    // [checkpoint]
    {"checkpoint", "every", FIELD(checkpoint.every), kOptional, at_least(0)},
    {"checkpoint", "keep_last", FIELD(checkpoint.keep_last), kOptional, at_least(1)},
    {"checkpoint", "keep_every", FIELD(checkpoint.keep_every), kOptional, at_least(0)},
    {"checkpoint", "log_spaced", FIELD(checkpoint.log_spaced)},
    // [run]
    {"run", "dir", FIELD(run.dir), kOptional, {}, /*non_empty=*/true},
    {"run", "stop_signal", FIELD(run.stop_signal)},
    {"run", "deadline", FIELD(run.deadline)},
    {"run", "deadline_margin", FIELD(run.deadline_margin), kOptional, at_least(0)},
    // [watchdog]
    {"watchdog", "enabled", FIELD(watchdog.enabled)},
    {"watchdog", "startup_timeout", FIELD(watchdog.startup_timeout), kOptional, above(0)},
    {"watchdog", "step_timeout", FIELD(watchdog.step_timeout), kOptional, above(0)},
    {"watchdog", "save_timeout", FIELD(watchdog.save_timeout), kOptional, above(0)},
    {"watchdog", "factor", FIELD(watchdog.factor), kOptional, at_least(1)},
    // [logbook]
    {"logbook", "enabled", FIELD(logbook.enabled)},
    {"logbook", "flush_every_s", FIELD(logbook.flush_every_s), kOptional, at_least(0)},
    {"logbook", "layer_stats_every", FIELD(logbook.layer_stats_every), kOptional, at_least(0)},
    {"logbook", "spike_window", FIELD(logbook.spike_window), kOptional, at_least(2)},
    {"logbook", "spike_threshold", FIELD(logbook.spike_threshold), kOptional, above(0)},
    {"logbook", "spike_warmup", FIELD(logbook.spike_warmup), kOptional, at_least(2)},
    {"logbook", "spike_action", FIELD(logbook.spike_action)},
    {"logbook", "nonfinite_action", FIELD(logbook.nonfinite_action)},
    {"logbook", "rollback_skip_steps", FIELD(logbook.rollback_skip_steps), kOptional, at_least(1)},
    {"logbook", "max_consecutive", FIELD(logbook.max_consecutive), kOptional, at_least(1)},
    {"logbook", "test_nan_grad_steps", FIELD(logbook.test_nan_grad_steps), kOptional, at_least(1)},
    {"logbook", "test_loss_spike_steps", FIELD(logbook.test_loss_spike_steps), kOptional, at_least(1)},
    {"logbook", "test_kill_after_steps", FIELD(logbook.test_kill_after_steps), kOptional, at_least(0)},
    // [lora]
    {"lora", "rank", FIELD(lora.rank), kOptional, at_least(0)},
    {"lora", "alpha", FIELD(lora.alpha), kOptional, above(0)},
    {"lora", "rslora", FIELD(lora.rslora)},
    {"lora", "dropout", FIELD(lora.dropout), kOptional, half_open(0, 1)},
    {"lora", "target_modules", FIELD(lora.target_modules)},
    {"lora", "base_dtype", FIELD(lora.base_dtype)},
    // [dpo]
    {"dpo", "beta", FIELD(dpo.beta), kOptional, above(0)},
    {"dpo", "loss", FIELD(dpo.loss)},
    {"dpo", "label_smoothing", FIELD(dpo.label_smoothing), kOptional, half_open(0, 0.5)},
    // [eval]
    {"eval", "prompts", FIELD(eval.prompts)},
    {"eval", "max_new_tokens", FIELD(eval.max_new_tokens), kOptional, at_least(1)},
};

#undef FIELD

const EnumName<Arch> kArchNames[] = {{"gpt2", Arch::gpt2}, {"llama", Arch::llama}};
const EnumName<LrDecay> kDecayNames[] = {
    {"cosine", LrDecay::cosine}, {"linear", LrDecay::linear}, {"constant", LrDecay::constant}};
const EnumName<Objective> kObjectiveNames[] = {
    {"lm", Objective::lm}, {"sft", Objective::sft}, {"dpo", Objective::dpo}};
const EnumName<DpoLoss> kDpoLossNames[] = {{"sigmoid", DpoLoss::sigmoid}, {"ipo", DpoLoss::ipo}};
const EnumName<CudaGraphs> kCudaGraphsNames[] = {
    {"auto", CudaGraphs::automatic}, {"on", CudaGraphs::on}, {"off", CudaGraphs::off}};
const EnumName<Recompute> kRecomputeNames[] = {
    {"none", Recompute::none}, {"selective", Recompute::selective}, {"full", Recompute::full}};
const EnumName<StopSignal> kStopSignalNames[] = {
    {"USR1", StopSignal::usr1}, {"USR2", StopSignal::usr2}, {"TERM", StopSignal::term}};
const EnumName<SpikeAction> kSpikeActionNames[] = {
    {"log", SpikeAction::log}, {"skip", SpikeAction::skip}, {"rollback", SpikeAction::rollback}};

template <class E>
std::string quoted_choices(std::span<const EnumName<E>> names) {
  std::string s = "one of ";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += i + 1 == names.size() ? " or " : ", ";
    s += "\"" + std::string(names[i].name) + "\"";
  }
  return s;
}

// Bounds as text for "an integer >= 1" / "a number in [0, 1)".
std::string bounds_text(const Bounds& b, bool integer) {
  auto num = [&](double v) {
    return integer ? std::to_string(static_cast<int64_t>(v)) : format_double_plain(v);
  };
  const bool has_lo = std::isfinite(b.lo), has_hi = std::isfinite(b.hi);
  if (has_lo && has_hi) {
    if (integer) return " in " + num(b.lo) + ".." + num(b.hi);
    return " in " + std::string(b.lo_open ? "(" : "[") + num(b.lo) + ", " + num(b.hi) +
           (b.hi_open ? ")" : "]");
  }
  if (has_lo) return std::string(b.lo_open ? " > " : " >= ") + num(b.lo);
  if (has_hi) return std::string(b.hi_open ? " < " : " <= ") + num(b.hi);
  return "";
}

}  // namespace

bool Bounds::contains(double v) const {
  if (std::isnan(v)) return false;
  const bool lo_ok = lo_open ? v > lo : v >= lo;
  const bool hi_ok = hi_open ? v < hi : v <= hi;
  return lo_ok && hi_ok;
}

std::string ConfigKey::path() const { return std::string(section) + "." + std::string(name); }

std::string ConfigKey::expected() const {
  return std::visit(
      [&](auto ref) -> std::string {
        using T = std::remove_reference_t<decltype(ref(std::declval<Config&>()))>;
        if constexpr (std::is_same_v<T, bool>) {
          return "true or false";
        } else if constexpr (std::is_integral_v<T>) {
          return "an integer" + bounds_text(bounds, true);
        } else if constexpr (std::is_same_v<T, double>) {
          return "a finite number" + bounds_text(bounds, false);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return non_empty ? "a non-empty string" : "a string";
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          return "an array of integers" + bounds_text(bounds, true);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return "an array of strings";
        } else {
          return quoted_choices(enum_names(T{}));
        }
      },
      field);
}

std::span<const ConfigKey> config_keys() { return kKeys; }
std::span<const std::string_view> config_sections() { return kSections; }

const ConfigKey* find_config_key(std::string_view section, std::string_view name) {
  for (const ConfigKey& k : kKeys)
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

std::span<const EnumName<Arch>> enum_names(Arch) { return kArchNames; }
std::span<const EnumName<LrDecay>> enum_names(LrDecay) { return kDecayNames; }
std::span<const EnumName<Recompute>> enum_names(Recompute) { return kRecomputeNames; }
std::span<const EnumName<StopSignal>> enum_names(StopSignal) { return kStopSignalNames; }
std::span<const EnumName<Objective>> enum_names(Objective) { return kObjectiveNames; }
std::span<const EnumName<SpikeAction>> enum_names(SpikeAction) { return kSpikeActionNames; }
std::span<const EnumName<DpoLoss>> enum_names(DpoLoss) { return kDpoLossNames; }
std::span<const EnumName<CudaGraphs>> enum_names(CudaGraphs) { return kCudaGraphsNames; }

std::string_view lr_decay_name(LrDecay d) {
  for (const auto& e : kDecayNames)
    if (e.value == d) return e.name;
  LLMPI_CHECK(false, "unknown LrDecay ", static_cast<int>(d));
}

std::string format_double_plain(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  LLMPI_CHECK(r.ec == std::errc{}, "to_chars failed");
  std::string s(buf, r.ptr);
  // "3e-04" -> "3e-4", "1e+20" -> "1e20": the exponent without sign padding or leading zeros.
  if (const size_t e = s.find('e'); e != std::string::npos) {
    std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
    std::string sign;
    if (exponent[0] == '-' || exponent[0] == '+') {
      if (exponent[0] == '-') sign = "-";
      exponent.erase(0, 1);
    }
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    s = mantissa + "e" + sign + exponent;
  }
  return s;
}

std::string format_double(double v) {
  LLMPI_CHECK(std::isfinite(v), "cannot write a non-finite number as a config value: ", v);
  std::string s = format_double_plain(v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string quote_toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", u);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace llmpi::config
