#include "cli/args.h"

#include <cstdlib>

#include "core/error.h"

namespace llmpi {

Args::Args(std::vector<std::string> args, std::string command)
    : args_(std::move(args)), used_(args_.size(), false), command_(std::move(command)) {}

bool Args::help_requested() const {
  for (const auto& a : args_)
    if (a == "-h" || a == "--help") return true;
  return false;
}

bool Args::flag(const std::string& name) {
  bool found = false;
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i] && args_[i] == name) used_[i] = found = true;
  return found;
}

std::optional<std::string> Args::get(const std::string& name) {
  std::optional<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i]) continue;
    if (args_[i] == name) {
      if (i + 1 >= args_.size())
        user_error(command_, ": option ", name, " needs a value");
      used_[i] = used_[i + 1] = true;
      out = args_[i + 1];
      ++i;
    } else if (args_[i].rfind(name + "=", 0) == 0) {
      used_[i] = true;
      out = args_[i].substr(name.size() + 1);
    }
  }
  return out;
}

std::string Args::get(const std::string& name, const std::string& fallback) {
  auto v = get(name);
  return v ? *v : fallback;
}

std::string Args::require(const std::string& name) {
  auto v = get(name);
  if (!v) user_error(command_, ": missing required option ", name, " (see --help)");
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0')
    user_error(command_, ": option ", name, " expects an integer, got '", *v, "'");
  return x;
}

double Args::get_double(const std::string& name, double fallback) {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0')
    user_error(command_, ": option ", name, " expects a number, got '", *v, "'");
  return x;
}

std::vector<std::string> Args::get_all(const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i]) continue;
    if (args_[i] == name) {
      if (i + 1 >= args_.size()) user_error(command_, ": option ", name, " needs a value");
      used_[i] = used_[i + 1] = true;
      out.push_back(args_[i + 1]);
      ++i;
    } else if (args_[i].rfind(name + "=", 0) == 0) {
      used_[i] = true;
      out.push_back(args_[i].substr(name.size() + 1));
    }
  }
  return out;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || args_[i].rfind("--", 0) == 0) continue;
    used_[i] = true;
    out.push_back(args_[i]);
  }
  return out;
}

void Args::finish() {
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i])
      user_error(command_, ": unexpected argument '", args_[i], "' (see ", command_, " --help)");
}

}  // namespace llmpi
