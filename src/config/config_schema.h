#pragma once
// The configuration schema: one table row per TOML key (section, name, the Config field it
// sets, whether it is required, its numeric bounds). The reader, the writer (to_toml), the
// unknown-key check with its "did you mean" suggestion, and the docs test all walk this one
// table, so a new key is added in exactly one place (plus docs/config.md).
// Cross-key rules (n_head | d_model, seq_len <= max_seq_len, ...) are not here: see
// config_checks.h. Rows are in the order to_toml writes them.
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace llmpi::config {

// A field of Config, reached from the whole Config (sections are nested, so a plain pointer
// to member cannot name them). Non-capturing lambdas convert to these function pointers.
template <class T>
using FieldRef = T& (*)(Config&);
using Field = std::variant<FieldRef<int64_t>, FieldRef<int>, FieldRef<uint64_t>, FieldRef<double>,
                           FieldRef<bool>, FieldRef<std::string>, FieldRef<Arch>, FieldRef<LrDecay>,
                           FieldRef<Recompute>, FieldRef<Objective>, FieldRef<DpoLoss>,
                           FieldRef<CudaGraphs>, FieldRef<StopSignal>, FieldRef<SpikeAction>,
                           FieldRef<std::vector<int64_t>>, FieldRef<std::vector<std::string>>>;

enum class Presence : uint8_t {
  optional,  // absent: the struct's default
  required,  // absent: an error
  derived,   // absent: computed from other keys after reading (see config_reader.cpp)
};

// Closed or open bounds on a number; integers use the same (exact for |v| < 2^53).
struct Bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  bool contains(double v) const;
};

struct ConfigKey {
  std::string_view section;
  std::string_view name;
  Field field;
  Presence presence = Presence::optional;
  Bounds bounds{};
  bool non_empty = false;  // strings only: "" is rejected

  std::string path() const;      // "section.name"
  std::string expected() const;  // "an integer >= 1", "a number in [0, 1)", "one of ...", ...
};

// Every key, in the order of docs/config.md and to_toml.
std::span<const ConfigKey> config_keys();
// The section names, in order: model, train, data, parallel, checkpoint, run, watchdog,
// logbook, lora, dpo, eval.
std::span<const std::string_view> config_sections();
// The row of section.name, or nullptr.
const ConfigKey* find_config_key(std::string_view section, std::string_view name);

// Enumerations: the spelling of each value in TOML.
template <class E>
struct EnumName {
  std::string_view name;
  E value;
};
std::span<const EnumName<Arch>> enum_names(Arch);
std::span<const EnumName<LrDecay>> enum_names(LrDecay);
std::span<const EnumName<Recompute>> enum_names(Recompute);
std::span<const EnumName<Objective>> enum_names(Objective);
std::span<const EnumName<DpoLoss>> enum_names(DpoLoss);
std::span<const EnumName<CudaGraphs>> enum_names(CudaGraphs);
std::span<const EnumName<StopSignal>> enum_names(StopSignal);
std::span<const EnumName<SpikeAction>> enum_names(SpikeAction);
std::string_view lr_decay_name(LrDecay d);

// Shortest decimal that reads back to exactly `v` ("0.0003", "1e-05", "10000"), for messages.
std::string format_double_plain(double v);
// Shortest decimal that reads back to exactly `v`, always with a '.' or an exponent so that
// TOML reads it as a float ("0.0003", "1e-05", "10000.0").
std::string format_double(double v);

// The value of one key of `c` as to_toml writes it ("0.0003", "\"cosine\"", "[1, 2]").
std::string value_text(const Config& c, const ConfigKey& key);

// A TOML basic string: "..." with \\, \" and control characters escaped.
std::string quote_toml_string(std::string_view s);

}  // namespace llmpi::config
