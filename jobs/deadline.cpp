#include "jobs/deadline.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>

#include "core/error.h"
#include "core/subprocess.h"

namespace llmpi {
namespace {

bool digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

std::optional<double> parse_local_time(const std::string& text) {
  // Exactly YYYY-MM-DDTHH:MM[:SS]; strptime alone would accept looser forms.
  if (text.size() != 16 && text.size() != 19) return std::nullopt;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool sep = i == 4 || i == 7 || i == 10 || i == 13 || i == 16;
    if (sep) {
      const char want = i < 10 ? '-' : i == 10 ? 'T' : ':';
      if (c != want) return std::nullopt;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  tm.tm_year = std::stoi(text.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(text.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(text.substr(8, 2));
  tm.tm_hour = std::stoi(text.substr(11, 2));
  tm.tm_min = std::stoi(text.substr(14, 2));
  tm.tm_sec = text.size() == 19 ? std::stoi(text.substr(17, 2)) : 0;
  tm.tm_isdst = -1;
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return std::nullopt;
  const std::time_t t = std::mktime(&tm);
  if (t == std::time_t(-1)) return std::nullopt;
  return double(t);
}

std::optional<double> parse_deadline(const std::string& text, double start_unix) {
  if (text.empty()) return std::nullopt;
  if (auto t = parse_local_time(text)) return t;
  const char unit = text.back();
  const std::string number = text.substr(0, text.size() - 1);
  if ((unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') && digits(number)) {
    const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
    const double v = std::stod(number) * scale;
    if (v > 0) return start_unix + v;
  }
  if (text.size() >= 5 && std::count(text.begin(), text.end(), ':') == 2) {
    const size_t a = text.find(':'), b = text.rfind(':');
    const std::string h = text.substr(0, a), m = text.substr(a + 1, b - a - 1), s = text.substr(b + 1);
    if (digits(h) && digits(m) && digits(s) && m.size() <= 2 && s.size() <= 2) {
      const double v = std::stod(h) * 3600 + std::stod(m) * 60 + std::stod(s);
      if (v > 0) return start_unix + v;
    }
  }
  user_error("run.deadline: '", text, "' is neither a local time YYYY-MM-DDTHH:MM[:SS] nor a "
             "positive duration such as \"45s\", \"90m\", \"2h\", \"1d\" or \"1:30:00\"");
}

std::optional<double> slurm_job_end_time(std::string* note) {
  auto say = [&](const std::string& s) {
    if (note) *note = s;
  };
  if (const char* e = std::getenv("SLURM_JOB_END_TIME"); e && digits(e)) {
    const double t = std::stod(e);
    if (t > 0) return t;
  }
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !digits(job)) return std::nullopt;
  const ProcessResult p = run_process({"squeue", "-h", "-j", job, "-o", "%e"}, 20.0);
  if (!p.ok()) {
    say("squeue did not tell the end time of job " + std::string(job) + " (" +
        (p.started ? trim(p.err + p.out) : p.error) + ")");
    return std::nullopt;
  }
  const std::string out = trim(p.out);
  if (auto t = parse_local_time(out)) return t;
  if (out != "N/A" && out != "Unknown" && out != "NONE") say("squeue printed an end time '" + out + "' that is not YYYY-MM-DDTHH:MM:SS");
  return std::nullopt;  // no time limit
}

Deadline earliest_deadline(std::optional<double> configured, std::optional<double> slurm_end,
                           const std::string& slurm_job_id) {
  Deadline d;
  if (configured) {
    d.at_unix = *configured;
    d.source = "[run] deadline";
  }
  if (slurm_end && (!configured || *slurm_end < *configured)) {
    d.at_unix = *slurm_end;
    d.source = "Slurm job " + slurm_job_id + " end time";
    d.slurm = true;
  }
  return d;
}

double estimated_save_s(int64_t checkpoint_bytes) {
  return std::max(1.0, double(checkpoint_bytes) / 500e6);
}

bool must_stop_for(const Deadline& d, double now_unix, const StopBudget& b) {
  return bool(d) && now_unix + b.need() >= d.at_unix;
}

bool signal_is_timeout(const Deadline& d, double signal_unix, double signal_margin_s) {
  return bool(d) && d.slurm && d.at_unix - signal_unix <= signal_margin_s + 65.0;
}

double slurm_signal_margin_s() {
  if (const char* e = std::getenv("LLMPI_SIGNAL_MARGIN"); e && digits(e)) return std::stod(e);
  return 180.0;
}

}  // namespace llmpi
