// The command-line half of tool_io.h.
#include "bench/perfmodel/tool_io.h"

#include <CLI/CLI.hpp>

namespace llmpi::perf {

bool parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return true;
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return false;
  } catch (const CLI::ParseError& e) {
    user_error(e.what(), " (see ", app.get_name(), " --help)");
  }
}

}  // namespace llmpi::perf
