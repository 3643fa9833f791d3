#pragma once
// Option declarations shared by the subcommands, on top of CLI11, so that every command reads
// its command line alike:
//   add_value   one value, "--name V" or "--name=V"; given twice, the last one counts
//   add_list    repeatable, one value per occurrence ("--set a=1 --set b=2")
//   add_switch  a flag without a value
// Validators give messages that name what was expected ("--tokens: expects an integer, got
// 'x'"; "--top-p: must be in (0, 1], got 2"); CLI11 prefixes the option name. They run
// before the value is converted, so a conversion never fails on its own.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

// Checks that a value parses as a whole integer / number.
CLI::Validator integer_value();
CLI::Validator number_value();
// Numeric bounds (the value must also parse as a number).
CLI::Validator at_least(double lo);                  // v >= lo
CLI::Validator in_range(double lo, bool lo_open, double hi, bool hi_open);
// One of a fixed set of words: "expects 'text' or 'jsonl', got 'csv'".
CLI::Validator one_of(std::vector<std::string> words);

CLI::Option* add_value(CLI::App& app, const std::string& name, std::string& value,
                       const std::string& metavar, const std::string& help);
CLI::Option* add_value(CLI::App& app, const std::string& name, int64_t& value,
                       const std::string& metavar, const std::string& help);
CLI::Option* add_value(CLI::App& app, const std::string& name, double& value,
                       const std::string& metavar, const std::string& help);
CLI::Option* add_list(CLI::App& app, const std::string& name, std::vector<std::string>& values,
                      const std::string& metavar, const std::string& help);
CLI::Option* add_switch(CLI::App& app, const std::string& name, bool& value,
                        const std::string& help);

}  // namespace llmpi
