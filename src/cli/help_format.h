#pragma once
// The --help text of every command, generated from its CLI::App so that each option is
// declared once (name, metavar, one line of help) and listed the same way everywhere:
//
//   usage: llmpi <path> <synopsis>
//
//   <description>
//
//   arguments:              (positionals)         commands:      (a group: its subcommands,
//     MODEL   ...                                   submit ...    each with its summary)
//   options:
//     --tokens N   ...  (a help line may hold "\n": continuation lines are indented)
//     -h, --help   this help
#include <string>

namespace CLI {
class App;
}

namespace llmpi {

struct HelpText {
  std::string path;         // "llmpi", "llmpi sample", "llmpi slurm submit"
  std::string synopsis;     // after the path on the usage line
  std::string description;  // paragraphs, may be empty
};

std::string format_help(const CLI::App& app, const HelpText& text);

}  // namespace llmpi
