#pragma once
// The event journal: what happened to a run, when, at which step and segment, on which rank
// and host, with typed details — stored in logbook.h5 (/journal, docs/logbook-format.md) and
// told as sentences in LOGBOOK.md.
// Every event type is ONE row of LLMPI_JOURNAL_EVENTS: its name (stored in the file), its
// severity, and the LOGBOOK.md sentence. In a sentence, {key} is the event detail `key`
// (formatted by its unit suffix: *_bytes → "1.2 GB", *_s → "3.4 s", *_gbps → "0.35 GB/s");
// [ ... ] is printed only when every {key} inside it is present. Adding a type is adding one
// row; readers keep names they do not know (a newer writer's) and print them generically.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/layout.h"

// X(name, severity, sentence)
#define LLMPI_JOURNAL_EVENTS(X)                                                                  \
  X(run_start, info, "run started at step {step} on {layout} (world size {world_size}"           \
                     "[ on {hosts}]); llmpi {llmpi_version}, git {git_revision}, config "        \
                     "{config_hash}")                                                            \
  X(resume, info, "resumed from {checkpoint} (step {from_step}[, saved on {saved_layout}]) on "  \
                  "{layout}")                                                                    \
  X(config_change, notice, "configuration changed since the previous segment[: {summary}]"     \
                           "[; not checked: {unchecked}]")                                      \
  X(checkpoint_saved, info, "checkpoint {path} saved[: {size_bytes}][ in {write_s}]"            \
                            "[ ({write_gbps})][, training stalled {stall_s}]")                  \
  X(checkpoint_rejected, warning, "checkpoint {path} rejected: {reason}")                        \
  X(checkpoint_deleted, info, "checkpoint {path} deleted (retention)")                          \
  X(checkpoint_set_aside, warning, "checkpoint {path} is unreadable[ ({message})]; moved aside " \
                                   "to {moved_to}")                                             \
  X(temporary_removed, notice, "removed {path} (an interrupted save)")                          \
  X(loss_spike, warning, "loss spike: loss {loss} (z {loss_z}), gradient norm {grad_norm} "     \
                         "(z {grad_z}); action: {action}")                                      \
  X(step_skipped, warning, "update of step {step} not applied: {reason}")                        \
  X(nonfinite, warning, "non-finite {what} at step {step}")                                     \
  X(rollback, warning, "rolled back from step {step} to the checkpoint of step {to_step}; the "  \
                       "data of steps {skip_first}..{skip_last} ({samples} samples) is skipped") \
  X(signal, notice, "signal {signal} received[: {action}]")                                     \
  X(timeout, notice, "time limit near ({source}[, {seconds_left} s left]): {action}")           \
  X(requeue, notice, "requeued as Slurm job {slurm_job} (restart {restart_count})")             \
  X(watchdog, error, "the watchdog ended an earlier launch: rank {rank}[ on {host}] hung"      \
                     "[ {stalled_s}] at step {step}[, phase {phase}][, waiting in {collective}]" \
                     "[ over {group}]")                                                         \
  X(failure, error, "failure[ on rank {failed_rank}]: {message}")                                \
  X(logbook_reset, warning, "the logbook {reason}; [it was moved to {moved_to} and ]a new one "  \
                            "was started")                                                      \
  X(eval_prompt, info, "step {step}: prompt {prompt} -> {generation}")                          \
  X(run_end, info, "run ended at step {step}: {status}")

namespace llmpi {

enum class EventType : uint8_t {
#define LLMPI_EVENT_ENUM(name, severity, sentence) name,
  LLMPI_JOURNAL_EVENTS(LLMPI_EVENT_ENUM)
#undef LLMPI_EVENT_ENUM
};

enum class Severity : uint8_t { info, notice, warning, error };

struct EventTypeInfo {
  EventType type;
  std::string_view name;
  Severity severity;
  std::string_view sentence;
};

// Every type, in declaration order.
const std::vector<EventTypeInfo>& event_types();
std::string_view event_name(EventType t);
// The type named `name`, or nullopt (a name from a newer writer).
std::optional<EventType> find_event_type(std::string_view name);
std::string_view severity_name(Severity s);

struct Event {
  std::string type;        // event_name(EventType), or an unknown name read from a file
  double time_unix = 0.0;  // wall-clock time (seconds since 1970)
  int64_t step = -1;       // the step it concerns; -1 = none
  int64_t segment = -1;    // the run segment (0 = the first launch); -1 = filled by the logbook
  int64_t rank = -1;       // the rank it concerns; -1 = the job as a whole
  std::string host;        // the host of `rank` (or of rank 0); may be empty
  nlohmann::json details = nlohmann::json::object();  // a JSON object
};

// An event of type t at `step`, stamped with the current wall time.
Event make_event(EventType t, int64_t step, nlohmann::json details = nlohmann::json::object());

// The LOGBOOK.md sentence of `e` (its type's template filled from its details; an unknown
// type prints "<type>: key value, ...").
std::string render_sentence(const Event& e);
// A detail value as text, formatted by the unit suffix of its key (see the header comment).
std::string format_detail(std::string_view key, const nlohmann::json& value);

// A parallel layout as LOGBOOK.md and the report write it: "tp2·dp4, ZeRO 1" (degrees of 1
// left out; "1 rank" when all are 1).
std::string layout_text(const Layout& layout);

}  // namespace llmpi
