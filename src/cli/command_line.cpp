// The command tree, parsing, errors with did-you-mean, and dispatch (see command_line.h).
#include "cli/command_line.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/help_format.h"
#include "config/did_you_mean.h"
#include "core/error.h"
#include "core/launcher_rank.h"

namespace llmpi {
namespace {

constexpr const char* kAbout =
    "llmpi — train decoder-only transformers over MPI: data preparation, training on any\n"
    "parallel layout (resuming from checkpoints), sampling, evaluation and inspection.\n";

// One node of the tree: its app, its full path ("llmpi slurm submit") and, for a command,
// its action.
struct Node {
  CLI::App* app = nullptr;
  std::string path;
  CommandAction action;
};

class CommandTree {
 public:
  explicit CommandTree(const std::vector<CommandSpec>& commands) {
    root_.set_help_flag("-h,--help", "this help");
    root_.allow_extras();
    root_.require_subcommand(0, 1);
    set_help(root_, HelpText{"llmpi", "<command> [options]", kAbout});
    nodes_[&root_] = Node{&root_, "llmpi", {}};
    for (const CommandSpec& spec : commands) add(spec);
  }

  CLI::App& root() { return root_; }
  Node& node(const CLI::App* app) { return nodes_.at(app); }

  // The deepest command that the parse selected.
  CLI::App* selected() {
    CLI::App* app = &root_;
    while (!app->get_subcommands().empty()) app = app->get_subcommands().front();
    return app;
  }

 private:
  static void set_help(CLI::App& app, HelpText text) {
    app.formatter_fn([text](const CLI::App* a, std::string, CLI::AppFormatMode) {
      return format_help(*a, text);
    });
  }

  // The child `word` of `parent` (a group or a command), made as a group when missing.
  CLI::App* child(CLI::App* parent, const std::string& word) {
    const Node& p = nodes_.at(parent);
    for (CLI::App* sub : parent->get_subcommands(std::function<bool(CLI::App*)>{}))
      if (sub->get_name() == word) return sub;
    CLI::App* sub = parent->add_subcommand(word, "");
    sub->allow_extras();
    sub->require_subcommand(0, 1);
    const std::string path = p.path + " " + word;
    set_help(*sub, HelpText{path, "<command> [options]", ""});
    nodes_[sub] = Node{sub, path, {}};
    return sub;
  }

  void add(const CommandSpec& spec) {
    std::istringstream words(spec.path);
    CLI::App* app = &root_;
    for (std::string w; words >> w;) app = child(app, w);
    LLMPI_CHECK(app != &root_ && !nodes_.at(app).action, "command '", spec.path,
                "' is empty or listed twice");
    Node& n = nodes_.at(app);
    app->description(spec.summary);
    const bool group = !spec.declare;
    set_help(*app, HelpText{n.path, group ? "<command> [options]" : spec.synopsis,
                            spec.description});
    if (!group) n.action = spec.declare(*app);
  }

  CLI::App root_{"", "llmpi"};
  std::map<const CLI::App*, Node> nodes_;
};

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::App* sub : app.get_subcommands(std::function<bool(const CLI::App*)>{}))
    out.push_back(sub->get_name());
  return out;
}

// The long option names ("--tokens"): the candidates for a misspelt option.
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::Option* o : app.get_options())
    for (const std::string& n : o->get_lnames()) out.push_back("--" + n);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

[[noreturn]] void fail(const Node& n, const std::string& what) {
  throw CommandLineError(n.path + ": " + what + " (see " + n.path + " --help)");
}

// "--tokns=5" → "unknown option '--tokns'; did you mean '--tokens'?"; "x" → unexpected.
[[noreturn]] void reject_leftover(const Node& n, const std::string& arg) {
  if (arg.size() > 1 && arg[0] == '-') {
    const std::string name = arg.substr(0, arg.find('='));
    const std::vector<std::string> known = option_names(*n.app);
    const auto best = did_you_mean(name, known);
    fail(n, "unknown option '" + name + "'" + (best ? "; did you mean '" + *best + "'?" : ""));
  }
  fail(n, "unexpected argument '" + arg + "'");
}

[[noreturn]] void reject_command(const Node& n, const std::string& word) {
  const std::vector<std::string> known = command_names(*n.app);
  const auto best = did_you_mean(word, known);
  fail(n, "unknown command '" + word + "'; expected one of " + join(known) +
              (best ? "; did you mean '" + *best + "'?" : ""));
}

// CLI11's messages, reworded where they do not say what was expected.
std::string explain(const CLI::ParseError& e) {
  std::string m = e.what();
  const std::string missing = " missing";
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && m.size() > missing.size() &&
      m.compare(m.size() - missing.size(), missing.size(), missing) == 0) {
    return m.substr(0, m.find(':')) + " needs a value";  // "--tokens: 1 required N missing"
  }
  const std::string override_msg = " was given a disallowed flag override";  // "greedy was ..."
  if (const size_t at = m.find(override_msg); at != std::string::npos) {
    const std::string name = m.substr(0, at);
    return (name.rfind("-", 0) == 0 ? name : "--" + name) + " takes no value";
  }
  return m;
}

}  // namespace

CommandEnv::CommandEnv(std::function<Runtime&()> start_runtime)
    : start_runtime_(std::move(start_runtime)) {}

Runtime& CommandEnv::runtime() {
  LLMPI_CHECK(bool(start_runtime_), command_, " needs MPI, but no runtime was provided");
  return start_runtime_();
}

std::string top_level_help(const std::vector<CommandSpec>& commands) {
  CommandTree tree(commands);
  return tree.root().help();
}

int run_command_line(const std::vector<std::string>& args_in, CommandEnv& env,
                     const std::vector<CommandSpec>& commands) {
  std::vector<std::string> args = args_in;
  if (!args.empty() && args[0] == "--version") args[0] = "version";
  if (!args.empty() && args[0] == "help") {  // "llmpi help slurm submit" = "... --help"
    args.erase(args.begin());
    args.push_back("--help");
  }
  CommandTree tree(commands);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  // "-h" or "--help" anywhere asks for help, even as another option's value or next to a bad
  // one (CLI11 checks values before it looks for --help).
  const bool wants_help = std::find_if(args.begin(), args.end(), [](const std::string& a) {
                            return a == "-h" || a == "--help";
                          }) != args.end();
  try {
    tree.root().parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (!wants_help) {
      const Node& n = tree.node(tree.selected());
      env.set_command(n.path);
      // A misspelt option explains more than what its absence caused ("CONFIG is required").
      for (const std::string& left : n.app->remaining())
        if (left.size() > 1 && left[0] == '-') reject_leftover(n, left);
      fail(n, explain(e));
    }
  }
  if (wants_help) {
    // Every rank of a launch asked for the same help: one copy, from the launcher's rank 0.
    if (prints_for_all_ranks())
      std::cout << tree.root().help() << std::flush;  // delegates to the selected command
    return 0;
  }
  // Leftovers, from the top down: the first one found is reported.
  for (CLI::App* app = &tree.root();; app = app->get_subcommands().front()) {
    const Node& n = tree.node(app);
    env.set_command(n.path);
    const std::vector<std::string> left = app->remaining();
    const bool leaf = app->get_subcommands().empty();
    if (!left.empty() && (!leaf || n.action || left[0][0] == '-')) reject_leftover(n, left[0]);
    if (leaf && !n.action) {
      if (!left.empty()) reject_command(n, left[0]);
      fail(n, "expected a command: " + join(command_names(*app)));
    }
    if (leaf) break;
  }
  return tree.node(tree.selected()).action(env);
}

}  // namespace llmpi
