#pragma once
// ProgressMeter: progress of a long data pass on stderr, with counts (documents, bytes,
// tokens) and, when the total byte count is known, a bar and percentage.
// On a terminal the line is redrawn in place ("\r", at most 10 times a second); otherwise
// (log files, Slurm output) a plain line is printed at most every 15 seconds plus a final
// one, so logs stay short. Disabled meters print nothing.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace llmpi {

class ProgressMeter {
 public:
  ProgressMeter(std::string phase, int64_t total_bytes, bool enabled, std::FILE* out = stderr);
  ~ProgressMeter();
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  void update(int64_t documents, int64_t bytes, int64_t tokens);  // tokens < 0: not shown
  void finish();  // final line (idempotent)

 private:
  void draw(bool final);
  std::string phase_;
  int64_t total_bytes_;
  bool enabled_, tty_ = false, finished_ = false;
  std::FILE* out_;
  int64_t docs_ = 0, bytes_ = 0, tokens_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "12.3 MB", "1.2 GB", "512 B"
std::string human_bytes(int64_t bytes);
// "1.23M", "45.6k", "789"
std::string human_count(int64_t n);

}  // namespace llmpi
