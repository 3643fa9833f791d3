#pragma once
// Stop signals: how a run is asked to stop early and save (preemption, Ctrl-C, a deadline
// signal from Slurm). The configured signal ([run] stop_signal: USR1, USR2 or TERM; NCCL has
// been known to catch USR1, hence the choice), SIGTERM and SIGINT are caught:
//   first signal   recorded only (async-signal-safe); the trainer reads pending() once per
//                  step, all ranks agree with one collective, stop after that step, save a
//                  checkpoint synchronously and exit 75 (jobs/exit_codes.h)
//   second signal  a line on stderr, then _exit(128 + signal) at once: nothing is saved
// A signal handler cannot carry state, so the record lives in one process-wide atomic in
// stop_signals.cpp; StopSignals owns its installation (RAII: the previous handlers come back
// on destruction) and at most one StopSignals exists at a time.
#include <memory>
#include <string>

namespace llmpi {

// "USR1", "SIGUSR1", "usr1" → "USR1". UserError naming `what` unless USR1, USR2 or TERM.
std::string parse_stop_signal(const std::string& text, const std::string& what);
// "USR1" → SIGUSR1 (any name parse_stop_signal returns, and "INT").
int signal_number(const std::string& name);
// SIGUSR1 → "USR1"; "signal N" for others.
std::string signal_name(int signo);

class StopSignals {
 public:
  // Installs the handlers for `configured` (a parse_stop_signal name), SIGTERM and SIGINT.
  explicit StopSignals(const std::string& configured);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received since installation (a signal number), or 0.
  int pending() const;
  // Seconds since the epoch when the first signal arrived (0 when none).
  double received_at() const;
  // For tests: forget a received signal (the next one counts as a first signal again).
  void clear();

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace llmpi
