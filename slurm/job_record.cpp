#include "slurm/job_record.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmpi {

namespace fs = std::filesystem;

std::string slurm_dir(const std::string& run_dir) { return (fs::path(run_dir) / "slurm").string(); }

std::string job_records_path(const std::string& run_dir) {
  return (fs::path(slurm_dir(run_dir)) / "jobs.jsonl").string();
}

std::string job_output_path(const JobRecord& r) {
  std::string p = r.output;
  for (size_t at = p.find("%j"); at != std::string::npos; at = p.find("%j", at + r.job_id.size()))
    p.replace(at, 2, r.job_id);
  return p;
}

void append_job_record(const std::string& run_dir, const JobRecord& r) {
  const nlohmann::json j = {{"job_id", r.job_id},
                            {"chain_index", r.chain_index},
                            {"chain_length", r.chain_length},
                            {"depends_on", r.depends_on},
                            {"submitted_unix", r.submitted_unix},
                            {"script", r.script},
                            {"output", r.output},
                            {"nodes", r.nodes},
                            {"tasks_per_node", r.tasks_per_node},
                            {"gpus_per_task", r.gpus_per_task},
                            {"time_limit_s", r.time_limit_s},
                            {"partition", r.partition},
                            {"launcher", r.launcher},
                            {"llmpi", r.llmpi_version}};
  std::error_code ec;
  fs::create_directories(slurm_dir(run_dir), ec);
  const std::string path = job_records_path(run_dir);
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
  out.flush();
  if (!out) user_error(path, ": cannot append the job record (", ec ? ec.message() : "write failed", ")");
}

std::vector<JobRecord> read_job_records(const std::string& run_dir) {
  std::vector<JobRecord> records;
  const std::string path = job_records_path(run_dir);
  std::ifstream in(path);
  if (!in) return records;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      JobRecord r;
      r.job_id = j.at("job_id").get<std::string>();
      r.chain_index = j.value("chain_index", int64_t{1});
      r.chain_length = j.value("chain_length", int64_t{1});
      r.depends_on = j.value("depends_on", std::string());
      r.submitted_unix = j.value("submitted_unix", 0.0);
      r.script = j.value("script", std::string());
      r.output = j.value("output", std::string());
      r.nodes = j.value("nodes", int64_t{1});
      r.tasks_per_node = j.value("tasks_per_node", int64_t{1});
      r.gpus_per_task = j.value("gpus_per_task", int64_t{0});
      r.time_limit_s = j.value("time_limit_s", int64_t{0});
      r.partition = j.value("partition", std::string());
      r.launcher = j.value("launcher", std::string());
      r.llmpi_version = j.value("llmpi", std::string());
      records.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      user_error(path, ":", line_no, ": not a job record (", e.what(), ")");
    }
  }
  return records;
}

}  // namespace llmpi
