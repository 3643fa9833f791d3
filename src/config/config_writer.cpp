// to_toml: a Config written back as TOML, every key explicit (derived defaults included), in
// schema order, so that parse_config(to_toml(c)) == c. Doubles use the shortest decimal that
// reads back to the same bits; strings are TOML basic strings.
#include <type_traits>

#include "config/config.h"
#include "config/config_schema.h"
#include "core/error.h"

namespace llmpi {

namespace {

template <class T>
std::string toml_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    LLMPI_CHECK(v <= static_cast<uint64_t>(INT64_MAX), "value ", v, " does not fit a TOML integer");
    return std::to_string(v);
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, double>) {
    return config::format_double(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return config::quote_toml_string(v);
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + config::quote_toml_string(v[i]);
    return s + "]";
  } else {
    for (const auto& e : config::enum_names(T{}))
      if (e.value == v) return config::quote_toml_string(e.name);
    LLMPI_CHECK(false, "enumeration value ", static_cast<int>(v), " has no name");
  }
}

}  // namespace

std::string config::value_text(const Config& c, const config::ConfigKey& key) {
  Config copy = c;  // the schema's field references take a mutable Config
  return std::visit([&](auto ref) { return toml_value(ref(copy)); }, key.field);
}

std::string to_toml(const Config& c) {
  Config copy = c;  // the schema's field references take a mutable Config
  std::string out;
  std::string_view section;
  for (const config::ConfigKey& k : config::config_keys()) {
    if (k.section != section) {
      if (!out.empty()) out += '\n';
      section = k.section;
      out += "[" + std::string(section) + "]\n";
    }
    out += std::string(k.name) + " = ";
    out += std::visit([&](auto ref) { return toml_value(ref(copy)); }, k.field);
    out += '\n';
  }
  return out;
}

}  // namespace llmpi
