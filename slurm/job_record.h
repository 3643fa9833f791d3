#pragma once
// The run directory's record of its Slurm jobs: <run.dir>/slurm/jobs.jsonl, one JSON object
// per submitted job, appended by `llmpi slurm submit` and read by `llmpi slurm status`:
//   {"job_id": "123", "chain_index": 1, "chain_length": 2, "depends_on": "",
//    "submitted_unix": 1733390000.5, "script": "/abs/run/slurm/submit-....sbatch",
//    "output": "/abs/run/slurm/%j.out", "nodes": 1, "tasks_per_node": 2, "gpus_per_task": 0,
//    "time_limit_s": 3600, "partition": "", "launcher": "srun", "llmpi": "llmpi 0.1.0 (git ...)"}
// The batch scripts and the jobs' output files sit beside it in <run.dir>/slurm/.
#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

struct JobRecord {
  std::string job_id;
  int64_t chain_index = 1, chain_length = 1;
  std::string depends_on;  // the job id this one waits for (afterany), or ""
  double submitted_unix = 0.0;
  std::string script, output;
  int64_t nodes = 1, tasks_per_node = 1, gpus_per_task = 0, time_limit_s = 0;
  std::string partition, launcher, llmpi_version;

  bool operator==(const JobRecord&) const = default;
};

std::string slurm_dir(const std::string& run_dir);        // <run.dir>/slurm
std::string job_records_path(const std::string& run_dir);  // <run.dir>/slurm/jobs.jsonl
// The output file of one job: the record's --output pattern with %j replaced by the id.
std::string job_output_path(const JobRecord& r);

// Appends one line (creating <run.dir>/slurm/); UserError when it cannot be written.
void append_job_record(const std::string& run_dir, const JobRecord& r);
// Every record, in file order; none when the file does not exist. UserError naming the file
// and line for a line that is not a record.
std::vector<JobRecord> read_job_records(const std::string& run_dir);

}  // namespace llmpi
