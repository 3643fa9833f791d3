#pragma once
// Agreement on a failure only some ranks see. A UserError thrown on one rank while the others
// go on into a collective hangs the job; so wherever a check is rank-dependent (rank 0 alone
// takes the run directory's lock, renames a file, a node-local file is unreadable), the ranks
// agree on the verdict before anyone acts on it:
//   agree_on_failure(comm, mine)   collective: every rank passes its own failure ("" = none)
//                                   and gets the lowest failing rank's, the same on every rank
//   agreed(comm, f)                collective: runs f on every rank; a UserError on any rank
//                                   is thrown on every rank (the lowest failing rank's message,
//                                   "… (on rank R)" when R is not 0), so all leave together
//   spread(comm, values)           collective: the least and greatest value of each, to refuse
//                                   input that differs between ranks on every rank alike
// A command ends with one more agreement, which cannot hang (llmpi train: after its setup,
// and after training):
//   agree_or_abort(comm, mine, wait_s)   a failing rank waits at most wait_s for the others; a
//                                   rank that failed where the others did not (they wait in
//                                   some collective) ends the job (abort_job, exit 2) with its
//                                   message instead of hanging.
// Only UserError is agreed: any other exception is a bug and ends the job (cli/main.cpp).
#include <mpi.h>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace llmpi {

struct AgreedFailure {
  int rank = -1;        // the lowest failing rank of comm; -1 = no rank failed
  std::string message;  // its message
  explicit operator bool() const { return rank >= 0; }
  // The message as every rank reports it: "(on rank R)" added when R is not 0.
  std::string text() const;
};

// Collective over comm (MPI_COMM_NULL: this process alone).
AgreedFailure agree_on_failure(MPI_Comm comm, const std::string& mine);

// Collective over comm: f() on every rank, its UserError agreed (see above).
template <class F>
auto agreed(MPI_Comm comm, F&& f) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  std::string mine;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> out;
  try {
    if constexpr (std::is_void_v<R>) {
      f();
      out.emplace(true);
    } else {
      out.emplace(f());
    }
  } catch (const UserError& e) {
    mine = *e.what() ? e.what() : "failed";
  }
  if (const AgreedFailure a = agree_on_failure(comm, mine)) throw UserError(a.text());
  if constexpr (!std::is_void_v<R>) return std::move(*out);
}

// Collective: the least and the greatest of each rank's `values` (the same length on every
// rank), the same on every rank; lo == hi where every rank passed the same value. For inputs
// every rank reads on its own that must be alike (the data's size): a verdict all ranks share.
struct Spread {
  std::vector<int64_t> lo, hi;
  bool same(size_t i) const { return lo[i] == hi[i]; }
};
Spread spread(MPI_Comm comm, const std::vector<int64_t>& values);

// A command's last agreement (see above): collective over comm, which no other code uses (a
// private duplicate). Returns the agreed failure; never returns on a rank whose failure the
// others did not reach within wait_s (abort_job(mine, 2) ends the whole job). `command`
// ("llmpi train") prefixes the message of such an abort.
AgreedFailure agree_or_abort(MPI_Comm comm, const std::string& mine, double wait_s,
                          const std::string& command);

}  // namespace llmpi
