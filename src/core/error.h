#pragma once
// Errors. Two kinds, told apart by type:
//  - UserError: bad input (config, data, checkpoint, command line). The message names the
//    file/key/line and what was expected; the CLI prints it and exits with code 2.
//  - InternalError: a broken invariant inside llmpi (a bug), or a failed system call.
//    The CLI prints it and exits with code 1; under MPI the job is aborted on every rank.
#include <stdexcept>
#include <string>
#include <sstream>

namespace llmpi {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct InternalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws UserError with the pieces concatenated: user_error("config.toml:12: key 'x' ...").
template <class... Args>
[[noreturn]] void user_error(Args&&... args) {
  throw UserError(detail::concat(std::forward<Args>(args)...));
}

}  // namespace llmpi

// Internal invariant check: throws InternalError naming the source line.
#define LLMPI_CHECK(cond, ...)                                                              \
  do {                                                                                      \
    if (!(cond))                                                                            \
      throw ::llmpi::InternalError(::llmpi::detail::concat(__FILE__, ":", __LINE__,         \
                                                           ": check failed: " #cond ": ",   \
                                                           ##__VA_ARGS__));                 \
  } while (0)
