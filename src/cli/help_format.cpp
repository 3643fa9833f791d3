// --help rendering from a CLI::App (see help_format.h).
#include "cli/help_format.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <utility>
#include <vector>

namespace llmpi {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;  // (label, help)

std::string option_label(const CLI::Option& o) {
  if (o.get_positional()) return o.get_name(true);
  std::string s;
  for (const std::string& n : o.get_snames()) s += (s.empty() ? "-" : ", -") + n;
  for (const std::string& n : o.get_lnames()) s += (s.empty() ? "--" : ", --") + n;
  if (o.get_type_size() > 0) s += " " + o.get_type_name();
  return s;
}

// One section: labels in a column `width` wide, help lines (and their continuation lines)
// beside them.
void print_rows(std::string& out, const std::string& title, const Rows& rows, size_t width) {
  if (rows.empty()) return;
  out += "\n" + title + ":\n";
  for (const auto& [label, help] : rows) {
    std::string line = "  " + label;
    line.resize(width + 2, ' ');
    size_t start = 0;
    while (true) {
      const size_t nl = help.find('\n', start);
      line += help.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      out += line + "\n";
      if (nl == std::string::npos) break;
      line.assign(width + 2, ' ');
      start = nl + 1;
    }
  }
}

}  // namespace

std::string format_help(const CLI::App& app, const HelpText& text) {
  std::string out = "usage: " + text.path + (text.synopsis.empty() ? "" : " " + text.synopsis) + "\n";
  if (!text.description.empty()) {
    out += "\n" + text.description;
    if (text.description.back() != '\n') out += "\n";
  }
  Rows commands, arguments, options;
  for (const CLI::App* sub : app.get_subcommands(std::function<bool(const CLI::App*)>{}))
    commands.emplace_back(sub->get_name(), sub->get_description());
  for (const CLI::Option* o : app.get_options()) {
    if (o == app.get_help_ptr()) continue;  // listed last, after the command's own options
    (o->get_positional() ? arguments : options).emplace_back(option_label(*o), o->get_description());
  }
  if (const CLI::Option* h = app.get_help_ptr())
    options.emplace_back(option_label(*h), h->get_description());
  size_t width = 20;  // one label column for every section, at least 20 wide
  for (const Rows* rows : {&commands, &arguments, &options})
    for (const auto& row : *rows) width = std::max(width, row.first.size() + 2);
  print_rows(out, "commands", commands, width);
  print_rows(out, "arguments", arguments, width);
  // A group's only option is --help: say how to reach its commands' options instead.
  if (commands.empty() || options.size() > 1) print_rows(out, "options", options, width);
  if (!commands.empty())
    out += "\n" + text.path + " <command> --help shows the options of each command.\n";
  return out;
}

}  // namespace llmpi
