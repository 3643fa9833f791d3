#pragma once
// LOGBOOK.md: the run's logbook as a person reads it, in the spirit of the OPT-175B
// logbook — first the lineage (one line per segment: how it started, on which layout, what
// changed, which steps it trained, rollbacks, how it ended), then the chronicle (one entry per
// journal event, grouped by UTC day). Rendered from the journal and the per-segment step
// ranges; pure functions of their inputs (tested on fixed events).
#include <cstdint>
#include <string>
#include <vector>

#include "io/journal.h"
#include "io/logbook_schema.h"

namespace llmpi {

struct SegmentSummary {
  int64_t segment = 0;
  int64_t first_step = 0, last_step = 0;  // steps with a row in this segment (0 when none)
  int64_t rows = 0;
};

// Counts one row of (segment, step) into `segments` (kept in segment order).
void add_to_summary(std::vector<SegmentSummary>& segments, int64_t segment, int64_t step);
// Makes sure `segment` has an entry (a segment with events but no rows yet).
void note_segment(std::vector<SegmentSummary>& segments, int64_t segment);
// Per segment present in `steps` or `events`, in segment order.
std::vector<SegmentSummary> summarize_segments(const std::vector<StepMetrics>& steps,
                                               const std::vector<Event>& events);

// "segment 3: resumed from step 4000 on tp2·dp4, lr × 0.75; trained steps 4001–6000; ended at
// step 6000: finished" — one line per segment.
std::vector<std::string> lineage_lines(const std::vector<Event>& events,
                                       const std::vector<SegmentSummary>& segments);

// The whole LOGBOOK.md text. `title` names the run (its directory).
std::string render_logbook_markdown(const std::string& title, const std::vector<Event>& events,
                                    const std::vector<SegmentSummary>& segments);

// "2026-12-05 09:37:11" (UTC) for a Unix time.
std::string utc_time_text(double unix_seconds);

}  // namespace llmpi
