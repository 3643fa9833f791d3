// logbook.h5 changed or damaged by another tool (h5py, a crash of the disk): readers never
// crash, hang or allocate what a header declares, and a resumed run never appends into a
// table it cannot read or whose columns disagree — it sets the file aside and carries over
// what it could read. Each file is a real logbook, then mutated with the HDF5 C API.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "../helpers/logbook_rows.h"
#include "analysis/logbook_tables.h"
#include "io/logbook.h"
#include "io/logbook_file.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

// A cleanly closed logbook of 10 steps and 2 events in a fresh directory.
fs::path make_run(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_lbhostile_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  Logbook book(d.string(), synthetic_schema(), 0, [](const std::string&) {});
  for (int64_t s = 1; s <= 10; ++s) book.add_step(synthetic_step(s));
  book.add_event(synthetic_event(5));
  book.add_event(synthetic_event(10));
  return d;
}

// Runs `f` on the open file (read-write, no SWMR) and closes it.
template <class F>
void mutate(const fs::path& run, F f) {
  const hid_t file = H5Fopen((run / "logbook.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  f(file);
  H5Fclose(file);
}

void set_int64(hid_t file, const char* dset, hsize_t row, int64_t v) {
  const hid_t d = H5Dopen2(file, dset, H5P_DEFAULT);
  const hid_t fs_ = H5Dget_space(d);
  const hsize_t one = 1;
  H5Sselect_hyperslab(fs_, H5S_SELECT_SET, &row, nullptr, &one, nullptr);
  const hid_t ms = H5Screate_simple(1, &one, nullptr);
  H5Dwrite(d, H5T_NATIVE_INT64, ms, fs_, H5P_DEFAULT, &v);
  H5Sclose(ms);
  H5Sclose(fs_);
  H5Dclose(d);
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has_note(const LogbookContents& c, const std::string& s) {
  for (const auto& n : c.notes)
    if (n.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(LogbookHostile, DamagedMetadataEndsTheReadInsteadOfRetryingForHours) {
  const fs::path run = make_run("garbage");
  {
    std::fstream f(run / "logbook.h5", std::ios::in | std::ios::out | std::ios::binary);
    std::mt19937 rng(7);
    std::string junk(8192, '\0');
    for (char& ch : junk) ch = char(rng());
    f.seekp(2048);
    f.write(junk.data(), std::streamsize(junk.size()));
  }
  // In a child: the SWMR reader's checksum retries (100, doubling sleeps) never returned.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      read_logbook_file((run / "logbook.h5").string());
    } catch (...) {
    }
    _exit(0);
  }
  int status = 0;
  bool done = false;
  for (int i = 0; i < 300 && !done; ++i) {
    done = waitpid(pid, &status, WNOHANG) == pid;
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(done) << "reading a logbook with damaged metadata did not end within 30 s";
  fs::remove_all(run);
}

TEST(LogbookHostile, DeclaredDimensionsBeyondTheFileAreRefusedNotAllocated) {
  const fs::path run = make_run("dims");
  mutate(run, [](hid_t file) {
    const hid_t d = H5Dopen2(file, "/steps/loss", H5P_DEFAULT);
    const hsize_t huge = hsize_t(1) << 40;  // 8 TiB of float64
    EXPECT_GE(H5Dset_extent(d, &huge), 0);
    H5Dclose(d);
  });
  const LogbookContents c = read_logbook_file((run / "logbook.h5").string());  // was std::bad_alloc
  EXPECT_TRUE(has_note(c, "'loss' declares")) << (c.notes.empty() ? "" : c.notes[0]);
  EXPECT_TRUE(c.steps.empty());
  EXPECT_EQ(c.events.size(), 2u);  // the other tables are read
  fs::remove_all(run);
}

TEST(LogbookHostile, AColumnOfAnotherRankMakesItsTableUnreadableNotEmpty) {
  // /steps/loss 3-D or scalar: it read as 0 rows, so /steps read as empty without a word and
  // a resume rewrote the logbook without its step rows.
  for (const int rank : {0, 3}) {
    const fs::path run = make_run("rank" + std::to_string(rank));
    mutate(run, [&](hid_t file) {
      H5Ldelete(file, "/steps/loss", H5P_DEFAULT);
      const hsize_t dims[3] = {10, 2, 2};
      const hid_t s = rank ? H5Screate_simple(rank, dims, nullptr) : H5Screate(H5S_SCALAR);
      const hid_t d = H5Dcreate2(file, "/steps/loss", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dclose(d);
      H5Sclose(s);
    });
    const LogbookContents c = read_logbook_file((run / "logbook.h5").string());
    ASSERT_EQ(c.unreadable, std::vector<std::string>{"steps"}) << rank;
    EXPECT_TRUE(has_note(c, "dimensions, expected a table"));
    fs::remove_all(run);
  }
}

TEST(LogbookHostile, JournalOffsetsThatOverflowAndDeepDetailsAreDropped) {
  const fs::path run = make_run("journal");
  mutate(run, [](hid_t file) {
    // off + len overflows int64 (was read far outside the details buffer: SIGBUS/SIGSEGV).
    set_int64(file, "/journal/details_offset", 1, INT64_MAX - 10);
    set_int64(file, "/journal/details_length", 1, 100);
  });
  LogbookContents c = read_logbook_file((run / "logbook.h5").string());
  EXPECT_EQ(c.events.size(), 1u);
  EXPECT_TRUE(has_note(c, "event(s) from row 1 on were dropped"));

  // Details nested 100,000 deep: nlohmann's dump recursed and overflowed the stack.
  const fs::path run2 = make_run("deep");
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  mutate(run2, [&](hid_t file) {
    const hid_t d = H5Dopen2(file, "/journal/details", H5P_DEFAULT);
    hid_t space = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space, &n, nullptr);
    H5Sclose(space);
    const hsize_t total = n + deep.size(), count = deep.size();
    H5Dset_extent(d, &total);
    space = H5Dget_space(d);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, &n, nullptr, &count, nullptr);
    const hid_t ms = H5Screate_simple(1, &count, nullptr);
    H5Dwrite(d, H5T_NATIVE_UINT8, ms, space, H5P_DEFAULT, deep.data());
    H5Sclose(ms);
    H5Sclose(space);
    H5Dclose(d);
    set_int64(file, "/journal/details_offset", 0, int64_t(n));
    set_int64(file, "/journal/details_length", 0, int64_t(deep.size()));
  });
  c = read_logbook_file((run2 / "logbook.h5").string());
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_TRUE(c.events[0].details.empty());
  EXPECT_TRUE(has_note(c, "unreadable details"));
  std::ostringstream out;
  write_jsonl(c, out);  // must not recurse 100,000 deep
  EXPECT_NE(out.str().find("\"record\":\"event\""), std::string::npos);
  fs::remove_all(run);
  fs::remove_all(run2);
}

TEST(LogbookHostile, InvalidUtf8InStringsStillExportsAsJson) {
  const fs::path run = make_run("utf8");
  mutate(run, [](hid_t file) {
    const hid_t d = H5Dopen2(file, "/journal/type", H5P_DEFAULT);
    const hid_t t = H5Dget_type(d);
    const hid_t fs_ = H5Dget_space(d);
    const hsize_t row = 0, one = 1;
    H5Sselect_hyperslab(fs_, H5S_SELECT_SET, &row, nullptr, &one, nullptr);
    const hid_t ms = H5Screate_simple(1, &one, nullptr);
    char buf[32] = "\xff\xfe run_start";
    H5Dwrite(d, t, ms, fs_, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs_);
    H5Tclose(t);
    H5Dclose(d);
  });
  const LogbookContents c = read_logbook_file((run / "logbook.h5").string());
  ASSERT_EQ(c.events.size(), 2u);
  std::ostringstream out;
  EXPECT_NO_THROW(write_jsonl(c, out));  // was nlohmann type_error 316: "internal error"
  EXPECT_NE(out.str().find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  fs::remove_all(run);
}

TEST(LogbookHostile, AResumeNeverAppendsIntoATableItCannotReadAndKeepsTheFile) {
  // /steps/loss replaced by strings (h5py: f["steps/loss"] = [b"x"] * n): the resume used to
  // rewrite the logbook in place from what it could read — without any step row.
  const fs::path run = make_run("unreadable");
  mutate(run, [](hid_t file) {
    H5Ldelete(file, "/steps/loss", H5P_DEFAULT);
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 4);
    const hsize_t n = 10;
    const hid_t s = H5Screate_simple(1, &n, nullptr);
    const hid_t d = H5Dcreate2(file, "/steps/loss", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
  });
  const std::string before = bytes_of(run / "logbook.h5");
  std::vector<std::string> reports;
  {
    Logbook book(run.string(), synthetic_schema(), 1, [&](const std::string& l) { reports.push_back(l); });
    EXPECT_TRUE(book.enabled());
    EXPECT_EQ(book.events().size(), 3u);  // the 2 carried over + logbook_reset
    book.add_step(synthetic_step(11));
  }
  fs::path aside;
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().rfind("logbook.h5.damaged-", 0) == 0) aside = e.path();
  ASSERT_FALSE(aside.empty()) << (reports.empty() ? "" : reports[0]);
  EXPECT_EQ(bytes_of(aside), before);  // the original, untouched
  const LogbookContents c = read_logbook_file((run / "logbook.h5").string());
  EXPECT_TRUE(c.notes.empty());
  ASSERT_EQ(c.events.size(), 3u);
  EXPECT_EQ(c.events[2].type, "logbook_reset");
  EXPECT_NE(c.events[2].details.value("reason", "").find("steps"), std::string::npos);
  ASSERT_EQ(c.steps.size(), 1u);
  EXPECT_EQ(c.steps[0].step, 11);
  fs::remove_all(run);
}

TEST(LogbookHostile, AResumeNeverLeavesColumnsOfUnequalLength) {
  // A column made fixed-size (h5py: del, then create_dataset without maxshape): appending
  // extended the columns before it and failed on it, leaving /steps ragged; then a column
  // shorter than the others (5 rows): new rows landed beside other steps' values.
  for (const bool fixed : {true, false}) {
    const fs::path run = make_run(fixed ? "fixed" : "short");
    mutate(run, [&](hid_t file) {
      const hid_t old = H5Dopen2(file, "/steps/lr", H5P_DEFAULT);
      std::vector<double> v(10);
      H5Dread(old, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
      H5Dclose(old);
      H5Ldelete(file, "/steps/lr", H5P_DEFAULT);
      const hsize_t n = fixed ? 10 : 5, unlimited = H5S_UNLIMITED, chunk = 16;
      const hid_t s = H5Screate_simple(1, &n, fixed ? nullptr : &unlimited);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      if (!fixed) H5Pset_chunk(dcpl, 1, &chunk);
      const hid_t d = H5Dcreate2(file, "/steps/lr", H5T_IEEE_F64LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
      H5Dclose(d);
      H5Pclose(dcpl);
      H5Sclose(s);
    });
    {
      Logbook book(run.string(), synthetic_schema(), 1, [](const std::string&) {});
      EXPECT_TRUE(book.enabled());
      for (int64_t st = 11; st <= 12; ++st) book.add_step(synthetic_step(st));
    }
    const LogbookContents c = read_logbook_file((run / "logbook.h5").string());
    EXPECT_TRUE(c.notes.empty()) << c.notes[0];
    const size_t kept = fixed ? 10 : 5;
    ASSERT_EQ(c.steps.size(), kept + 2) << (fixed ? "fixed" : "short");
    EXPECT_EQ(c.steps[kept].step, 11);
    EXPECT_EQ(c.steps[kept].lr, synthetic_step(11).lr);  // its own step's value
    fs::remove_all(run);
  }
}
