// ProgressMeter drawing and throttling.
#include "data/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace llmpi {

std::string human_bytes(int64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000.0 && u < 5) v /= 1000.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string human_count(int64_t n) {
  const char* suffix[] = {"", "k", "M", "G", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000.0 && u < 4) v /= 1000.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.2f%s", v, suffix[u]);
  return buf;
}

ProgressMeter::ProgressMeter(std::string phase, int64_t total_bytes, bool enabled,
                             std::FILE* out)
    : phase_(std::move(phase)), total_bytes_(total_bytes), enabled_(enabled), out_(out) {
  tty_ = enabled_ && ::isatty(::fileno(out_)) == 1;
  start_ = last_draw_ = std::chrono::steady_clock::now();
  if (enabled_ && !tty_) std::fprintf(out_, "%s: started\n", phase_.c_str());
}

ProgressMeter::~ProgressMeter() {
  // An exception unwound past us: leave the terminal on a fresh line.
  if (enabled_ && tty_ && !finished_) std::fputc('\n', out_);
}

void ProgressMeter::update(int64_t documents, int64_t bytes, int64_t tokens) {
  docs_ = documents;
  bytes_ = bytes;
  tokens_ = tokens;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(15000);
  if (now - last_draw_ < interval) return;
  last_draw_ = now;
  draw(false);
}

void ProgressMeter::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressMeter::draw(bool final) {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar;
  if (total_bytes_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(bytes_) / total_bytes_);
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", 100.0 * frac);
    bar += pct;
  }
  const std::string of_total = total_bytes_ > 0 ? " of " + human_bytes(total_bytes_) : "";
  const std::string tokens = tokens_ >= 0 ? ", " + human_count(tokens_) + " tokens" : "";
  std::fprintf(out_, "%s%s: %s%s docs, %s%s%s, %.1f s%s", tty_ ? "\r" : "", phase_.c_str(),
               bar.c_str(), human_count(docs_).c_str(), human_bytes(bytes_).c_str(),
               of_total.c_str(), tokens.c_str(), secs, tty_ ? "\x1b[K" : "");
  if (final || !tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace llmpi
