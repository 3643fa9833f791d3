// Reading a configuration: TOML text -> table (TOML++) -> `--set` overrides merged into the
// table -> every key read against the schema (type, bounds, unknown keys, missing keys) ->
// derived defaults -> cross-key checks -> Config. Errors of each stage are collected and
// thrown together (see diagnostics.h for their format).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/config_checks.h"
#include "config/config_schema.h"
#include "config/diagnostics.h"
#include "config/did_you_mean.h"
#include "core/error.h"
#include "core/file_kind.h"
#include "core/excerpt.h"

namespace llmpi {
namespace config {
namespace {

std::string at_line(const std::string& file, const toml::source_region& src) {
  return src.begin.line > 0 ? file + ":" + std::to_string(src.begin.line) : file;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// `s` with control characters escaped, so that an override stays on one line of a message.
std::string printable(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    if (static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f) out += ch;
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else out += "\\x" + std::string(1, "0123456789abcdef"[(ch >> 4) & 15]) + "0123456789abcdef"[ch & 15];
  }
  return out;
}

std::string section_list() {
  std::string s;
  for (std::string_view name : config_sections()) {
    if (!s.empty()) s += ", ";
    s += "[" + std::string(name) + "]";
  }
  return s;
}

std::vector<std::string> key_names(std::string_view section) {
  std::vector<std::string> names;
  for (const ConfigKey& k : config_keys())
    if (k.section == section) names.emplace_back(k.name);
  return names;
}

// The names of the keys of every section but `section`.
std::vector<std::string> key_names_elsewhere(std::string_view section) {
  std::vector<std::string> names;
  for (const ConfigKey& k : config_keys())
    if (k.section != section) names.emplace_back(k.name);
  return names;
}

// The first key called `name` in any section, if any.
const ConfigKey* key_anywhere(std::string_view name) {
  for (const ConfigKey& k : config_keys())
    if (k.name == name) return &k;
  return nullptr;
}

// "\"twelve\" is a string", "12.5 is a floating-point number", ...
std::string describe(const toml::node& n) {
  if (auto* v = n.as_string()) return quote_toml_string(excerpt(v->get())) + " is a string";
  if (auto* v = n.as_integer()) return std::to_string(v->get()) + " is an integer";
  if (auto* v = n.as_floating_point()) {
    const double x = v->get();
    return (std::isfinite(x) ? format_double(x) : std::string(std::isnan(x) ? "nan" : "inf")) +
           " is a floating-point number";
  }
  if (auto* v = n.as_boolean()) return std::string(v->get() ? "true" : "false") + " is a boolean";
  if (n.is_array()) {
    std::ostringstream os;
    os << toml::node_view<const toml::node>(n);
    return os.str() + " is an array";
  }
  if (n.is_table()) return "the value is a table";
  return "the value is a date/time";
}

// One key's value into its field; errors name `where`.
template <class T>
void read_value(const ConfigKey& k, const toml::node& n, T& out, const std::string& where,
                Diagnostics& d) {
  auto wrong = [&](const std::string& what) { d.error(where, k.path(), what, k.expected()); };
  if constexpr (std::is_same_v<T, bool>) {
    if (auto* v = n.as_boolean()) out = v->get();
    else wrong(describe(n));
  } else if constexpr (std::is_integral_v<T>) {
    auto* v = n.as_integer();
    if (!v) return wrong(describe(n));
    const int64_t x = v->get();
    if (!k.bounds.contains(static_cast<double>(x))) return wrong(std::to_string(x) + " is out of range");
    out = static_cast<T>(x);
  } else if constexpr (std::is_same_v<T, double>) {
    double x;
    if (auto* i = n.as_integer()) x = static_cast<double>(i->get());
    else if (auto* f = n.as_floating_point()) x = f->get();
    else return wrong(describe(n));
    if (!std::isfinite(x)) return wrong(describe(n));
    if (!k.bounds.contains(x)) return wrong(format_double(x) + " is out of range");
    out = x;
  } else if constexpr (std::is_same_v<T, std::string>) {
    auto* v = n.as_string();
    if (!v) return wrong(describe(n));
    if (k.non_empty && v->get().empty()) return wrong("the string is empty");
    out = v->get();
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    auto* a = n.as_array();
    if (!a) return wrong(describe(n));
    std::vector<int64_t> xs;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      auto* v = e.as_integer();
      const std::string at = "element " + std::to_string(i) + ": ";
      if (!v) return wrong(at + describe(e));
      if (!k.bounds.contains(static_cast<double>(v->get())))
        return wrong(at + std::to_string(v->get()) + " is out of range");
      xs.push_back(v->get());
    }
    out = std::move(xs);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    auto* a = n.as_array();
    if (!a) return wrong(describe(n));
    std::vector<std::string> xs;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      auto* v = e.as_string();
      if (!v) return wrong("element " + std::to_string(i) + ": " + describe(e));
      xs.push_back(v->get());
    }
    out = std::move(xs);
  } else {  // an enumeration, spelt as a string
    auto* v = n.as_string();
    if (!v) return wrong(describe(n));
    std::vector<std::string> names;
    for (const auto& e : enum_names(T{})) {
      if (e.name == v->get()) {
        out = e.value;
        return;
      }
      names.emplace_back(e.name);
    }
    std::string what = quote_toml_string(excerpt(v->get())) + " is not a known value";
    if (auto s = did_you_mean(v->get(), names)) what += " (did you mean \"" + *s + "\"?)";
    wrong(what);
  }
}

void unknown_key(const std::string& where, std::string_view section, std::string_view name,
                 Diagnostics& d) {
  const std::string path = excerpt(std::string(section) + "." + std::string(name));
  const auto names = key_names(section);
  std::string expected;
  if (auto s = did_you_mean(name, names)) {
    expected = "a key of [" + std::string(section) + "]; did you mean '" + *s + "'?";
  } else if (const ConfigKey* other = key_anywhere(name)) {
    expected = "a key of [" + std::string(section) + "]; '" + excerpt(name) +
               "' belongs in [" + std::string(other->section) + "]";
  } else if (auto s = did_you_mean(name, key_names_elsewhere(section))) {
    const ConfigKey* k = key_anywhere(*s);
    expected = "a key of [" + std::string(section) + "]; did you mean '" + k->path() + "'?";
  } else {
    expected = "one of the keys of [" + std::string(section) + "]: ";
    for (size_t i = 0; i < names.size(); ++i) expected += (i ? ", " : "") + names[i];
  }
  d.error(where, path, "unknown key", expected);
}

void unknown_section(const std::string& where, std::string_view name, Diagnostics& d) {
  std::vector<std::string> sections(config_sections().begin(), config_sections().end());
  std::string msg = "section [" + excerpt(name) + "]: unknown section; expected one of " +
                    section_list();
  if (auto s = did_you_mean(name, sections)) msg += "; did you mean [" + *s + "]?";
  d.error(where, msg);
}

// A key written outside any section (before the first [header]).
void top_level_key(const std::string& where, std::string_view name, Diagnostics& d) {
  if (const ConfigKey* k = key_anywhere(name)) {
    d.error(where, std::string(name), "outside any section",
            "it under [" + std::string(k->section) + "] (as " + k->path() + ")");
  } else {
    d.error(where, excerpt(name), "unknown top-level key", "a section: one of " + section_list());
  }
}

// Merges the `--set section.key=value` overrides into `doc`; records their origins.
void apply_overrides(toml::table& doc, const std::vector<std::string>& overrides, Origins& o,
                     Diagnostics& d) {
  for (const std::string& raw : overrides) {
    const std::string where = "--set " + printable(excerpt(raw));
    const size_t eq = raw.find('=');
    if (eq == std::string::npos) {
      d.error(where, "missing '='; expected section.key=value (e.g. --set train.lr=3e-4)");
      continue;
    }
    const std::string path = trim(std::string_view(raw).substr(0, eq));
    const std::string text = trim(std::string_view(raw).substr(eq + 1));
    const size_t dot = path.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == path.size() ||
        path.find('.', dot + 1) != std::string::npos) {
      std::string expected = "section.key=value";
      if (const ConfigKey* k = key_anywhere(path)) expected += "; did you mean '" + k->path() + "'?";
      d.error(where, path, "not of the form section.key", expected);
      continue;
    }
    const std::string section = path.substr(0, dot), name = path.substr(dot + 1);
    const auto& sections = config_sections();
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      unknown_section(where, section, d);
      continue;
    }
    if (!find_config_key(section, name)) {
      unknown_key(where, section, name, d);
      continue;
    }
    // The value in TOML syntax ("1e-3", "true", "\"x\"", "[1, 2]"); anything else is a bare
    // string. Exactly one key must come back, so "1\nfoo = 2" cannot inject a second key.
    toml::table value;
    bool parsed = false;
    try {
      value = toml::parse("v = " + text);
      parsed = value.size() == 1 && value.contains("v");
    } catch (const toml::parse_error&) {
      parsed = false;
    }
    if (!parsed) {
      value = toml::table{};
      value.insert("v", text);
    }
    toml::node* sec = doc.get(section);
    if (!sec) sec = &doc.insert(section, toml::table{}).first->second;
    if (toml::table* t = sec->as_table()) {
      t->insert_or_assign(name, *value.get("v"));
      o.set(path, where);
    }
    // A section that is not a table is reported when the document is read.
  }
}

// Reads every key of `doc` into `c` (whose fields start at their defaults).
void read_document(const toml::table& doc, const std::string& file, Config& c, Origins& o,
                   Diagnostics& d) {
  for (const auto& [key, node] : doc) {
    const std::string name(key.str());
    const std::string where = at_line(file, node.source().begin.line ? node.source() : key.source());
    const auto& sections = config_sections();
    const bool known = std::find(sections.begin(), sections.end(), name) != sections.end();
    const toml::table* table = node.as_table();
    if (!known) {
      if (table) unknown_section(where, name, d);
      else top_level_key(where, name, d);
      continue;
    }
    if (!table) {
      d.error(where, name, describe(node), "a table [" + name + "]");
      continue;
    }
    if (!o.given(name)) o.set(name, where);  // a section's origin: its header line
    for (const auto& [k, value] : *table) {
      const std::string kname(k.str());
      const std::string path = name + "." + kname;
      if (!o.given(path)) o.set(path, at_line(file, value.source()));  // else: an override
      const ConfigKey* spec = find_config_key(name, kname);
      if (!spec) {
        unknown_key(o.of(path), name, kname, d);
        continue;
      }
      std::visit([&](auto ref) { read_value(*spec, value, ref(c), o.of(path), d); }, spec->field);
    }
  }
  for (const ConfigKey& k : config_keys()) {
    if (k.presence != Presence::required || o.given(k.path())) continue;
    const std::string section(k.section);
    const bool has_section = o.given(section);
    d.error(o.of(section), k.path(),
            has_section ? "missing from [" + section + "]" : "missing (there is no [" + section + "] section)",
            k.expected());
  }
}

// Defaults that depend on other keys (Presence::derived in the schema).
void fill_derived(Config& c, const Origins& o, Diagnostics& d) {
  ModelConfig& m = c.model;
  if (!o.given("model.n_kv_head")) m.n_kv_head = m.n_head;
  if (!o.given("model.d_ff")) {
    if (m.arch == Arch::gpt2) {
      m.d_ff = 4 * m.d_model;
    } else {
      d.error(o.of("model.d_ff", "model"), "model.d_ff", "missing (required for arch \"llama\")",
              "an integer >= 1 (typically about 8/3 * d_model, rounded to a multiple of 32)");
    }
  }
  if (!o.given("model.tied_embeddings")) m.tied_embeddings = m.arch == Arch::gpt2;
}

}  // namespace
}  // namespace config

Config parse_config(const std::string& text, const std::string& name,
                    const std::vector<std::string>& overrides) {
  using namespace config;
  toml::table doc;
  try {
    doc = toml::parse(text, std::string_view(name));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    user_error(name, ":", b.line, ":", b.column, ": invalid TOML: ", e.description(),
               "; expected TOML syntax (https://toml.io)");
  }
  Origins origins(name);
  Diagnostics diag;
  apply_overrides(doc, overrides, origins, diag);
  Config c;
  read_document(doc, name, c, origins, diag);
  if (diag.empty()) fill_derived(c, origins, diag);
  diag.throw_if_any();
  check_consistency(c, origins, diag);
  diag.throw_if_any();
  c.source_path = name;
  c.source_text = to_toml(c);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    user_error(path, ": no such file; expected a TOML configuration file (e.g. configs/tiny.toml)");
  require_regular_file(path, "a TOML configuration file");
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error(path, ": cannot open: ", std::strerror(errno), "; expected a readable file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) user_error(path, ": cannot read: ", std::strerror(errno), "; expected a readable file");
  return parse_config(text.str(), path, overrides);
}

}  // namespace llmpi
