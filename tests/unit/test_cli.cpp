// The command-line front end (cli/command_line.h): on a tree of made-up commands with nested
// groups (as `slurm submit` and `lora merge` will be), values reach the action; every bad
// command line is a UserError naming the argument, what was expected and the closest name
// (unknown commands and options at any depth); --help prints the deepest command's help.
// A bad command line is a CommandLineError, what an action finds is not; under a launcher,
// --help is printed by its rank 0 alone. And on the real registry: every command answers --help with its usage and options.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cli/command_line.h"
#include "cli/options.h"
#include "core/error.h"

using namespace llmpi;

namespace {

struct Submit {
  std::string config;
  int64_t nodes = 1;
  std::vector<std::string> sets;
  bool dry_run = false;
  std::string ran_as;
};

// demo (a plain command), slurm submit / slurm status (a listed group), lora merge (a group
// made implicitly by its nested command).
std::vector<CommandSpec> made_up(std::shared_ptr<Submit> seen) {
  auto submit = [seen](CLI::App& app) -> CommandAction {
    add_value(app, "CONFIG", seen->config, "CONFIG", "the config")->required();
    add_value(app, "--nodes", seen->nodes, "N", "nodes")->check(at_least(1));
    add_list(app, "--set", seen->sets, "k=v", "override");
    add_switch(app, "--dry-run", seen->dry_run, "print only");
    return [seen](CommandEnv& env) {
      seen->ran_as = env.command();
      return 7;
    };
  };
  auto trivial = [](CLI::App&) -> CommandAction { return [](CommandEnv&) { return 0; }; };
  auto needs_mpi = [](CLI::App&) -> CommandAction {
    return [](CommandEnv& env) {
      env.runtime();
      return 0;
    };
  };
  return {{"demo", "", "a plain command", "Demo description.\n", needs_mpi},
          {"slurm", "", "Slurm batch jobs", "Submit and watch jobs.\n", {}},
          {"slurm submit", "CONFIG [options]", "submit a job", "", submit},
          {"slurm status", "RUN_DIR", "show a run's jobs", "", trivial},
          {"lora merge", "IN OUT", "merge adapters", "", trivial}};
}

int run(const std::vector<CommandSpec>& cmds, const std::vector<std::string>& args,
        std::string* out = nullptr) {
  std::ostringstream capture;
  std::streambuf* saved = std::cout.rdbuf(capture.rdbuf());
  CommandEnv env;
  int rc = -1;
  try {
    rc = run_command_line(args, env, cmds);
  } catch (...) {
    std::cout.rdbuf(saved);
    throw;
  }
  std::cout.rdbuf(saved);
  if (out) *out = capture.str();
  return rc;
}

std::string error_of(const std::vector<CommandSpec>& cmds, const std::vector<std::string>& args) {
  try {
    run(cmds, args);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(CommandLine, NestedCommandGetsItsValues) {
  auto seen = std::make_shared<Submit>();
  const auto cmds = made_up(seen);
  EXPECT_EQ(run(cmds, {"slurm", "submit", "c.toml", "--nodes=3", "--set", "a=1", "--set", "b=2",
                       "--nodes", "4", "--dry-run"}),
            7);
  EXPECT_EQ(seen->config, "c.toml");
  EXPECT_EQ(seen->nodes, 4);  // given twice: the last one counts
  EXPECT_EQ(seen->sets, (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_TRUE(seen->dry_run);
  EXPECT_EQ(seen->ran_as, "llmpi slurm submit");
  EXPECT_EQ(run(cmds, {"lora", "merge"}), 0);
}

// Several needs_one_of rules on one command all hold, on value options and switches alike,
// whatever the order of the options on the line (a second rule replaced the first: only one
// rule per command was checked).
TEST(CommandLine, EveryNeedsOneOfRuleOfACommandIsChecked) {
  struct Args {
    std::string out, key;
    bool csv = false, jsonl = false, sign = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto declare = [a](CLI::App& app) -> CommandAction {
    Opt csv = add_switch(app, "--csv", a->csv, "csv");
    Opt jsonl = add_switch(app, "--jsonl", a->jsonl, "jsonl");
    Opt out = add_value(app, "--out", a->out, "PATH", "out");
    Opt sign = add_switch(app, "--sign", a->sign, "sign");
    Opt key = add_value(app, "--key", a->key, "KEY", "key");
    Opt quiet = add_switch(app, "--quiet", a->quiet, "quiet");
    out->needs_one_of({csv, jsonl});
    key->needs_one_of({sign});
    quiet->needs_one_of({out});
    quiet->needs_one_of({csv});  // two rules on one option
    return [](CommandEnv&) { return 0; };
  };
  const std::vector<CommandSpec> cmds = {{"export", "", "export", "Export.\n", declare}};
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"export", "--out", "x"}, "--out: requires --csv or --jsonl"},
      {{"export", "--key", "k"}, "--key: requires --sign"},
      {{"export", "--csv", "--key", "k"}, "--key: requires --sign"},
      {{"export", "--out", "x", "--sign", "--key", "k"}, "--out: requires --csv or --jsonl"},
      {{"export", "--quiet", "--csv"}, "--quiet: requires --out"},
      {{"export", "--jsonl", "--out", "x", "--quiet"}, "--quiet: requires --csv"}};
  for (const auto& [args, want] : refused) {
    const std::string e = error_of(cmds, args);
    EXPECT_TRUE(has(e, want)) << "got: " << e << "\nwant: " << want;
  }
  for (const std::vector<std::string>& ok :
       {std::vector<std::string>{"export"},
        std::vector<std::string>{"export", "--out", "x", "--jsonl"},
        std::vector<std::string>{"export", "--jsonl", "--out", "x"},
        std::vector<std::string>{"export", "--key", "k", "--sign", "--out", "x", "--csv"},
        std::vector<std::string>{"export", "--quiet", "--csv", "--out", "x"}})
    EXPECT_EQ(run(cmds, ok), 0) << ok.back();
}

TEST(CommandLine, UnknownCommandsAndOptionsGetTheClosestName) {
  const auto cmds = made_up(std::make_shared<Submit>());
  std::string e = error_of(cmds, {"slrum", "submit"});
  EXPECT_TRUE(has(e, "unknown command 'slrum'") && has(e, "did you mean 'slurm'?") &&
              has(e, "demo, slurm, lora"))
      << e;
  e = error_of(cmds, {"slurm", "sbumit", "c.toml"});
  EXPECT_TRUE(has(e, "llmpi slurm: unknown command 'sbumit'") && has(e, "did you mean 'submit'?"))
      << e;
  e = error_of(cmds, {"slurm", "submit", "c.toml", "--ndoes", "2"});
  EXPECT_TRUE(has(e, "llmpi slurm submit: unknown option '--ndoes'; did you mean '--nodes'?")) << e;
  e = error_of(cmds, {"slurm", "submit", "c.toml", "--dryrun=1"});
  EXPECT_TRUE(has(e, "unknown option '--dryrun'; did you mean '--dry-run'?")) << e;
  e = error_of(cmds, {"slurm", "submit", "c.toml", "--zzzzzz"});
  EXPECT_TRUE(has(e, "unknown option '--zzzzzz'") && !has(e, "did you mean")) << e;
  e = error_of(cmds, {"slurm", "submit", "--confg", "c.toml"});  // not "CONFIG is required"
  EXPECT_TRUE(has(e, "unknown option '--confg'")) << e;
  e = error_of(cmds, {"--nodse"});
  EXPECT_TRUE(has(e, "llmpi: unknown option '--nodse'")) << e;
}

TEST(CommandLine, BadValuesNameTheOptionAndWhatWasExpected) {
  const auto cmds = made_up(std::make_shared<Submit>());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"slurm", "submit", "c", "--nodes", "x"}, "--nodes: expects an integer, got 'x'"},
      {{"slurm", "submit", "c", "--nodes", "0"}, "--nodes: must be >= 1, got 0"},
      {{"slurm", "submit", "c", "--nodes"}, "--nodes needs a value"},
      {{"slurm", "submit", "c", "--dry-run=yes"}, "--dry-run takes no value"},
      {{"slurm", "submit"}, "CONFIG is required"},
      {{"slurm", "submit", "c", "d"}, "unexpected argument 'd'"},
      {{"slurm", "submit", "c", "--set", "a=1", "b=2"}, "unexpected argument 'b=2'"},
      {{"slurm"}, "llmpi slurm: expected a command: submit, status"},
      {{"lora"}, "llmpi lora: expected a command: merge"},
      {{}, "llmpi: expected a command: demo, slurm, lora"}};
  for (const auto& [args, want] : cases) {
    const std::string e = error_of(cmds, args);
    EXPECT_TRUE(has(e, want)) << "got: " << e << "\nwant: " << want;
    EXPECT_TRUE(has(e, "--help)")) << e;  // points at the help of the command
  }
}

TEST(CommandLine, HelpOfTheDeepestCommandNamed) {
  const auto cmds = made_up(std::make_shared<Submit>());
  std::string out;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"slurm", "submit", "--help"}, {"slurm", "submit", "c", "--nodes", "x", "-h"},
           {"help", "slurm", "submit"}, {"slurm", "submit", "c", "--set", "--help"}}) {
    ASSERT_EQ(run(cmds, args, &out), 0);
    EXPECT_TRUE(has(out, "usage: llmpi slurm submit CONFIG [options]")) << out;
    EXPECT_TRUE(has(out, "--nodes N") && has(out, "--set k=v") && has(out, "--dry-run") &&
                has(out, "CONFIG") && has(out, "-h, --help"))
        << out;
  }
  ASSERT_EQ(run(cmds, {"slurm", "--help"}, &out), 0);
  EXPECT_TRUE(has(out, "usage: llmpi slurm <command>") && has(out, "Submit and watch jobs.") &&
              has(out, "submit") && has(out, "show a run's jobs"))
      << out;
  ASSERT_EQ(run(cmds, {"--help"}, &out), 0);
  EXPECT_TRUE(has(out, "demo") && has(out, "a plain command") && has(out, "Slurm batch jobs") &&
              has(out, "lora"))
      << out;
}

// Every kind of bad command line (main prints these once per launch: the arguments alone
// decide them) is a CommandLineError; an action's own UserError (a file it did not find, which
// may differ per node) is not.
TEST(CommandLine, BadCommandLinesAreCommandLineErrorsAndActionErrorsAreNot) {
  auto cmds = made_up(std::make_shared<Submit>());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"slrum"}, {"slurm"}, {"--nodse"}, {"slurm", "submit"},
           {"slurm", "submit", "c", "--ndoes", "2"}, {"slurm", "submit", "c", "--nodes", "x"},
           {"slurm", "submit", "c", "--nodes", "0"}, {"slurm", "submit", "c", "extra"},
           {"slurm", "submit", "c", "--nodes"}, {"slurm", "submit", "c", "--dry-run=1"}}) {
    EXPECT_THROW(run(cmds, args), CommandLineError) << args.back();
  }
  cmds.push_back({"open", "FILE", "reads a file", "", [](CLI::App&) -> CommandAction {
                    return [](CommandEnv&) -> int { user_error("x.h5: no such file"); };
                  }});
  try {
    run(cmds, {"open"});
    ADD_FAILURE() << "no error";
  } catch (const CommandLineError& e) {
    ADD_FAILURE() << "an action's error taken for a bad command line: " << e.what();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "x.h5: no such file");
  }
}

// Every rank of `mpiexec -n N llmpi ... --help` asks for the same help: the launcher's rank 0
// prints it (core/launcher_rank.h), the others print nothing and succeed too.
TEST(CommandLine, HelpIsPrintedByTheLaunchersRankZeroAlone) {
  const auto cmds = made_up(std::make_shared<Submit>());
  const char* saved = std::getenv("OMPI_COMM_WORLD_RANK");
  const std::string saved_value = saved ? saved : "";
  std::string out;
  ::setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  EXPECT_EQ(run(cmds, {"slurm", "submit", "--help"}, &out), 0);
  EXPECT_EQ(out, "");
  EXPECT_THROW(run(cmds, {"slurm", "submit", "--ndoes"}), CommandLineError);  // main's to print
  ::setenv("OMPI_COMM_WORLD_RANK", "0", 1);
  EXPECT_EQ(run(cmds, {"slurm", "submit", "--help"}, &out), 0);
  EXPECT_TRUE(has(out, "usage: llmpi slurm submit CONFIG [options]")) << out;
  if (saved) {
    ::setenv("OMPI_COMM_WORLD_RANK", saved_value.c_str(), 1);
  } else {
    ::unsetenv("OMPI_COMM_WORLD_RANK");
  }
}

TEST(CommandLine, RuntimeOnlyWhenProvided) {
  const auto cmds = made_up(std::make_shared<Submit>());
  EXPECT_THROW(run(cmds, {"demo"}), InternalError);  // asked for MPI, none was given
  auto twice = cmds;
  twice.push_back(cmds.back());
  EXPECT_THROW(run(twice, {"demo"}), InternalError);  // a command listed twice
}

TEST(CommandLine, EveryRegisteredCommandHasHelp) {
  const std::vector<CommandSpec> cmds = all_commands();
  ASSERT_GE(cmds.size(), 6u);
  for (const CommandSpec& c : cmds) {
    EXPECT_FALSE(c.summary.empty()) << c.path;
    std::vector<std::string> args;
    std::istringstream words(c.path);
    for (std::string w; words >> w;) args.push_back(w);
    args.push_back("--help");
    std::string out;
    ASSERT_EQ(run(cmds, args, &out), 0) << c.path;
    EXPECT_TRUE(has(out, "usage: llmpi " + c.path)) << out;
    // A group (`slurm`) lists its commands and says how to see their options instead.
    if (has(out, "\ncommands:\n"))
      EXPECT_TRUE(has(out, "llmpi " + c.path + " <command> --help shows the options")) << out;
    else
      EXPECT_TRUE(has(out, "-h, --help")) << out;
  }
  std::string out;
  ASSERT_EQ(run(cmds, {"sample", "--help"}, &out), 0);
  EXPECT_TRUE(has(out, "slides a window") && has(out, "max_seq_len")) << out;
  const std::string e = error_of(cmds, {"sample", "m", "--temprature", "1"});
  EXPECT_TRUE(has(e, "did you mean '--temperature'?")) << e;
}

// Issue #13 item 8: non-finite numbers are refused by every numeric option (sample
// --temperature nan printed text with exit 0), before the command runs.
TEST(CommandLine, NonFiniteNumbersAreRefused) {
  const std::vector<CommandSpec> cmds = all_commands();
  for (const char* v : {"nan", "inf", "-inf", "NaN", "infinity"}) {
    const std::string e = error_of(cmds, {"sample", "no-such-model.h5", "--temperature", v});
    EXPECT_TRUE(has(e, "--temperature: expects a number") && has(e, v)) << e;
    const std::string p = error_of(cmds, {"sample", "no-such-model.h5", "--top-p", v});
    EXPECT_TRUE(has(p, "--top-p: expects a number")) << p;
  }
}

// Values outside what an option means are refused, not wrapped or ignored.
TEST(CommandLine, OutOfRangeValuesAreRefused) {
  const std::vector<CommandSpec> cmds = all_commands();
  const std::string seed = error_of(cmds, {"sample", "no-such-model.h5", "--seed", "-1"});
  EXPECT_TRUE(has(seed, "--seed: must be >= 0, got -1")) << seed;  // was 18446744073709551615
}

// An option that only means something beside another is refused without it (it was ignored).
TEST(CommandLine, OptionsIgnoredWithoutTheirPartnerAreRefused) {
  const std::vector<CommandSpec> cmds = all_commands();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"sample", "m.h5", "--template", "chatml"}, "--template requires --chat"},
      {{"sample", "m.h5", "--template-file", "t.json"}, "--template-file requires --chat"},
      {{"logbook", "run", "--out", "x"}, "--out: requires --csv or --jsonl"},
      {{"eval", "m.h5", "--batch-size", "0"}, "--batch-size: must be >= 1, got 0"}};
  for (const auto& [args, want] : cases) {
    const std::string e = error_of(cmds, args);
    EXPECT_TRUE(has(e, want)) << "got: " << e << "\nwant: " << want;
  }
  // With the partner, the command line parses (the command then fails on the missing files).
  for (const std::vector<std::string>& ok :
       {std::vector<std::string>{"sample", "m.h5", "--chat", "--template", "chatml"},
        std::vector<std::string>{"logbook", "run", "--jsonl", "--out", "x"}}) {
    std::string e;
    try {
      run(cmds, ok);
    } catch (const std::exception& x) {  // no runtime, no files: past the command line
      e = x.what();
    }
    EXPECT_FALSE(has(e, "requires")) << e;
  }
}
