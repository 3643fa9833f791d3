// A logbook writer for the kill -9 test (tests/unit/test_logbook.cpp): appends synthetic
// steps (per-layer rows every 5 steps, an event every 10) to <run_dir>/logbook.h5 through the
// real Logbook. Before each step it waits for one byte on stdin (the test sets the pace);
// after the step it flushes and prints "flushed <step>" on stdout. It runs until killed (or
// stdin closes). Usage: logbook_writer_child RUN_DIR
#include <cstdio>
#include <string>

#include "io/hdf5.h"
#include "io/logbook.h"
#include "logbook_rows.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: logbook_writer_child RUN_DIR\n");
    return 2;
  }
  llmpi::h5::silence_errors();
  using namespace llmpi;
  Logbook book(argv[1], testing::synthetic_schema(), 0,
               [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  for (int64_t s = 1; std::fgetc(stdin) != EOF; ++s) {
    book.add_step(testing::synthetic_step(s));
    if (s % 5 == 0) book.add_layers(testing::synthetic_layers(s));
    if (s % 10 == 0) book.add_event(testing::synthetic_event(s));
    book.flush();
    std::printf("flushed %lld\n", (long long)s);
    std::fflush(stdout);
  }
  return 0;
}
