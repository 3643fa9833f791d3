#pragma once
// The little I/O every performance-model tool shares: reading and writing a whole text file
// (JSON profiles and tables) with errors that name the file, the command line through CLI11
// (options declared with cli/options.h, as llmpi's own commands), and a main() that turns
// errors into the project's exit codes (UserError or a bad command line → 2 with its
// message, anything else → 1; --help → its text on stdout, 0). CLI11 itself is included only
// where an App is built (tool_io.cpp and the tools' mains).
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"

namespace CLI {
class App;
}

namespace llmpi::perf {

// The file's text; UserError "<path>: cannot open the <what>".
inline std::string read_text(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) user_error(path, ": cannot open the ", what);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes text to path; UserError "<tool>: cannot write <path>".
inline void write_text(const std::string& path, const std::string& text, const char* tool) {
  std::ofstream f(path);
  f << text;
  if (!f) user_error(tool, ": cannot write ", path);
}

// Parses argv into `app`; returns true to go on, false after --help (printed). A bad command
// line throws UserError naming the tool and the problem.
bool parse_args(CLI::App& app, int argc, char** argv);

// run(argc, argv) under the project's error convention, messages prefixed with `tool`.
template <class F>
int tool_main(const char* tool, F&& run, int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UserError& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", tool, e.what());
    return 1;
  }
}

}  // namespace llmpi::perf
