#include "jobs/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <ctime>

#include "core/error.h"

namespace llmpi {
namespace {

// The record a handler writes; read by StopSignals. Lock-free atomics only.
std::atomic<int> g_first_signal{0};
std::atomic<long long> g_first_at_ms{0};
std::atomic<bool> g_installed{false};

constexpr int kCaught[3] = {0 /* the configured one */, SIGTERM, SIGINT};

void write_all(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  while (n > 0) {
    const ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

extern "C" void on_stop_signal(int signo) {
  int expected = 0;
  if (g_first_signal.compare_exchange_strong(expected, signo)) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    g_first_at_ms.store(ts.tv_sec * 1000LL + ts.tv_nsec / 1000000);
    return;
  }
  // A second signal: leave now, without saving (what the user asked for).
  write_all("llmpi: second stop signal: exiting at once without saving\n");
  ::_exit(128 + signo);
}

}  // namespace

std::string parse_stop_signal(const std::string& text, const std::string& what) {
  std::string s;
  for (char c : text) s += char(std::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("SIG", 0) == 0) s.erase(0, 3);
  if (s == "USR1" || s == "USR2" || s == "TERM") return s;
  user_error(what, ": expected USR1, USR2 or TERM, got '", text, "'");
}

int signal_number(const std::string& name) {
  if (name == "USR1") return SIGUSR1;
  if (name == "USR2") return SIGUSR2;
  if (name == "TERM") return SIGTERM;
  if (name == "INT") return SIGINT;
  LLMPI_CHECK(false, "unknown signal name ", name);
  return 0;
}

std::string signal_name(int signo) {
  switch (signo) {
    case SIGUSR1: return "USR1";
    case SIGUSR2: return "USR2";
    case SIGTERM: return "TERM";
    case SIGINT: return "INT";
    default: return "signal " + std::to_string(signo);
  }
}

struct StopSignals::Saved {
  int signo[3] = {0, 0, 0};
  struct sigaction old[3] {};
  int count = 0;
};

StopSignals::StopSignals(const std::string& configured) : saved_(std::make_unique<Saved>()) {
  LLMPI_CHECK(!g_installed.exchange(true), "only one StopSignals at a time");
  g_first_signal.store(0);
  g_first_at_ms.store(0);
  int wanted[3] = {signal_number(configured), kCaught[1], kCaught[2]};
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // MPI and HDF5 calls are not interrupted by EINTR
  for (int s : wanted) {
    if (std::find(saved_->signo, saved_->signo + saved_->count, s) != saved_->signo + saved_->count)
      continue;
    saved_->signo[saved_->count] = s;
    sigaction(s, &sa, &saved_->old[saved_->count]);
    ++saved_->count;
  }
}

StopSignals::~StopSignals() {
  for (int i = 0; i < saved_->count; ++i) sigaction(saved_->signo[i], &saved_->old[i], nullptr);
  g_installed.store(false);
}

int StopSignals::pending() const { return g_first_signal.load(); }

double StopSignals::received_at() const { return double(g_first_at_ms.load()) / 1000.0; }

void StopSignals::clear() {
  g_first_signal.store(0);
  g_first_at_ms.store(0);
}

}  // namespace llmpi
