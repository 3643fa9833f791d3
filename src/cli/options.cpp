// Shared option declarations and validators (see options.h).
#include "cli/options.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace llmpi {
namespace {

bool parse_integer(const std::string& s, long long& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(s.c_str(), &end, 10);
  return *end == '\0' && errno == 0;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return *end == '\0' && std::isfinite(out);  // "nan" and "inf" are no option's values
}

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Value options keep the last occurrence; a positional is a plain name (no dashes).
Opt single(CLI::Option* o, const std::string& metavar) {
  o->type_name(metavar);
  if (!o->get_positional()) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  return Opt(o);
}

}  // namespace

Opt Opt::required() {
  o_->required();
  return *this;
}

// A validator with no description: the help shows the option's metavar, not the check.
Opt Opt::check(ValueCheck c) {
  o_->check(CLI::Validator([c = std::move(c)](std::string& s) { return c(s); }, ""));
  return *this;
}

Opt Opt::excludes(Opt other) {
  o_->excludes(other.o_);
  return *this;
}

Opt Opt::needs(Opt other) {
  o_->needs(other.o_);
  return *this;
}

// A check of this option's values that looks at the other options. CLI11 runs an option's
// checks after the whole command line is parsed (unless the option triggers on parse, which
// none here does), so their counts are final; it runs them only when this option was given,
// which is when the rule applies. (It was CLI11's parse-complete callback of the app, of
// which an app keeps one: a second rule on a command silently replaced the first.)
Opt Opt::needs_one_of(std::vector<Opt> any_of) {
  std::string names;
  for (const Opt& o : any_of) names += (names.empty() ? "" : " or ") + o.name();
  return check([any_of = std::move(any_of), names](const std::string&) {
    for (const Opt& o : any_of)
      if (o.count() > 0) return std::string();
    return "requires " + names;
  });
}

size_t Opt::count() const { return o_->count(); }

std::string Opt::name() const { return o_->get_name(); }

ValueCheck integer_value() {
  return [](const std::string& s) {
    long long v = 0;
    return parse_integer(s, v) ? std::string() : "expects an integer, got '" + s + "'";
  };
}

ValueCheck number_value() {
  return [](const std::string& s) {
    double v = 0;
    return parse_number(s, v) ? std::string() : "expects a number, got '" + s + "'";
  };
}

ValueCheck at_least(double lo) {
  return [lo](const std::string& s) {
    double v = 0;
    if (!parse_number(s, v)) return "expects a number, got '" + s + "'";
    return v >= lo ? std::string() : "must be >= " + number_text(lo) + ", got " + s;
  };
}

ValueCheck in_range(double lo, bool lo_open, double hi, bool hi_open) {
  const std::string range = std::string(lo_open ? "(" : "[") + number_text(lo) + ", " +
                            number_text(hi) + (hi_open ? ")" : "]");
  return [=](const std::string& s) {
    double v = 0;
    if (!parse_number(s, v)) return "expects a number in " + range + ", got '" + s + "'";
    const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    return ok ? std::string() : "must be in " + range + ", got " + s;
  };
}

ValueCheck one_of(std::vector<std::string> words) {
  std::string list;
  for (size_t i = 0; i < words.size(); ++i)
    list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + ("'" + words[i] + "'");
  return [words, list](const std::string& s) {
    for (const std::string& w : words)
      if (s == w) return std::string();
    return "expects " + list + ", got '" + s + "'";
  };
}

Opt add_value(CLI::App& app, const std::string& name, std::string& value,
              const std::string& metavar, const std::string& help) {
  return single(app.add_option(name, value, help), metavar);
}

Opt add_value(CLI::App& app, const std::string& name, int64_t& value,
              const std::string& metavar, const std::string& help) {
  return single(app.add_option(name, value, help), metavar)->check(integer_value());
}

Opt add_value(CLI::App& app, const std::string& name, double& value,
              const std::string& metavar, const std::string& help) {
  return single(app.add_option(name, value, help), metavar)->check(number_value());
}

Opt add_list(CLI::App& app, const std::string& name, std::vector<std::string>& values,
             const std::string& metavar, const std::string& help) {
  CLI::Option* o = app.add_option(name, values, help)->type_name(metavar);
  if (!o->get_positional())
    o->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  return Opt(o);
}

Opt add_switch(CLI::App& app, const std::string& name, bool& value, const std::string& help) {
  return Opt(app.add_flag(name, value, help)->disable_flag_override());
}

}  // namespace llmpi
