#pragma once
// Option declarations shared by the subcommands, on top of CLI11, so that every command reads
// its command line alike:
//   add_value   one value, "--name V" or "--name=V"; given twice, the last one counts
//   add_list    repeatable, one value per occurrence ("--set a=1 --set b=2")
//   add_switch  a flag without a value
// Validators give messages that name what was expected ("--tokens: expects an integer, got
// 'x'"; "--top-p: must be in (0, 1], got 2"); CLI11 prefixes the option name. They run
// before the value is converted, so a conversion never fails on its own.
// CLI11 stays out of this header (its inline definitions cost every including file ~6 s of
// compilation): options are declared through Opt, a handle on CLI11's option that chains as
// CLI::Option* did (add_value(...)->required()).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace llmpi {

// A check of one option's value: "" when the value passes, else what was expected.
using ValueCheck = std::function<std::string(const std::string&)>;

// Checks that a value parses as a whole integer / number.
ValueCheck integer_value();
ValueCheck number_value();
// Numeric bounds (the value must also parse as a number).
ValueCheck at_least(double lo);  // v >= lo
ValueCheck in_range(double lo, bool lo_open, double hi, bool hi_open);
// One of a fixed set of words: "expects 'text' or 'jsonl', got 'csv'".
ValueCheck one_of(std::vector<std::string> words);

// A declared option (a copyable handle; the App owns the option).
class Opt {
 public:
  explicit Opt(CLI::Option* o) : o_(o) {}
  Opt* operator->() { return this; }
  const Opt* operator->() const { return this; }
  Opt required();            // must be given
  Opt check(ValueCheck c);   // run c on every value given
  Opt excludes(Opt other);   // this and `other` may not both be given
  Opt needs(Opt other);      // this may only be given with `other` ("--template requires --chat")
  // This may only be given with at least one of `any_of` ("--out: requires --csv or --jsonl").
  // Any number of such rules per command, on one option or several: each is a check of this
  // option's own (see options.cpp), so no rule replaces another.
  Opt needs_one_of(std::vector<Opt> any_of);
  size_t count() const;      // occurrences on the parsed command line
  std::string name() const;  // "--out"

 private:
  CLI::Option* o_;
};

Opt add_value(CLI::App& app, const std::string& name, std::string& value,
              const std::string& metavar, const std::string& help);
Opt add_value(CLI::App& app, const std::string& name, int64_t& value,
              const std::string& metavar, const std::string& help);
Opt add_value(CLI::App& app, const std::string& name, double& value,
              const std::string& metavar, const std::string& help);
Opt add_list(CLI::App& app, const std::string& name, std::vector<std::string>& values,
             const std::string& metavar, const std::string& help);
Opt add_switch(CLI::App& app, const std::string& name, bool& value, const std::string& help);

}  // namespace llmpi
