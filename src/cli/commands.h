#pragma once
// The llmpi subcommands. Each takes the arguments after its name, returns the process exit
// code, prints its own --help, and throws UserError on bad input (main exits 2).
#include <string>
#include <vector>

namespace llmpi {

class Runtime;

int cmd_train(const std::vector<std::string>& args, Runtime& rt);
int cmd_prepare(const std::vector<std::string>& args);
int cmd_sample(const std::vector<std::string>& args, Runtime& rt);
int cmd_eval(const std::vector<std::string>& args, Runtime& rt);
int cmd_inspect(const std::vector<std::string>& args);
int cmd_export_hf(const std::vector<std::string>& args);
int cmd_import_hf(const std::vector<std::string>& args);

}  // namespace llmpi
