#include "jobs/job_events.h"

namespace llmpi {

std::string journal_line(const JobEvent& e) {
  std::string s = "journal: " + e.type;
  if (e.step >= 0) s += " step " + std::to_string(e.step);
  if (e.rank >= 0) s += " rank " + std::to_string(e.rank);
  if (!e.host.empty()) s += " host " + e.host;
  return s + " " + e.details.dump();
}

}  // namespace llmpi
