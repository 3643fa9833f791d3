#pragma once
// Asynchronous checkpoint saves: save() copies this rank's slabs into host buffers owned by
// the saver (the only stall training sees), then a background thread writes the file with
// save_checkpoint on a private communicator (MPI_Comm_dup of the one passed in), so the
// checkpoint's collectives never interleave with training collectives on the same comm.
//
// Requirements: MPI_THREAD_MULTIPLE (the Runtime requests it; when not granted the saver
// writes synchronously and says so once). HDF5 builds with parallel I/O are not thread-safe:
// while busy(), no other thread may call HDF5 — call wait() before any other HDF5 work
// (logbook, model file). One save in flight at a time: save() first waits for the previous.
// Every rank calls save()/wait() in the same order (the write is collective).
#include <mpi.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.h"

namespace llmpi {

struct AsyncSaveStats {
  int64_t saves = 0;
  double last_stall_s = 0;   // time save() blocked the caller (wait for previous + snapshot)
  double max_stall_s = 0;
  double total_stall_s = 0;
  double last_write_s = 0;   // background time of the last completed write (incl. verify)
};

class AsyncCheckpointer {
 public:
  // Collective over comm (MPI_COMM_NULL: serial). thread_level is Runtime::thread_level();
  // async = false forces synchronous saves. `warn` receives the fallback message (rank 0).
  AsyncCheckpointer(MPI_Comm comm, int thread_level, bool async = true,
                    std::function<void(const std::string&)> warn = {});
  ~AsyncCheckpointer();  // waits for the save in flight (errors are reported, not thrown)
  AsyncCheckpointer(const AsyncCheckpointer&) = delete;
  AsyncCheckpointer& operator=(const AsyncCheckpointer&) = delete;

  // Snapshots `slabs` and starts writing `path`; returns once the snapshot is taken (or, when
  // synchronous, once the file is written). on_done runs after a successful save (on the
  // writer thread; it must not use MPI on the training communicators nor HDF5).
  void save(const std::string& path, const CheckpointSlabs& slabs, const CheckpointMeta& meta,
            std::function<void()> on_done = {}, const SaveOptions& opt = {});
  // Blocks until no save is in flight; rethrows the error of a failed background save.
  void wait();
  bool busy() const;
  bool is_async() const { return async_; }
  AsyncSaveStats stats() const;

 private:
  void snapshot(const CheckpointSlabs& in);

  MPI_Comm comm_ = MPI_COMM_NULL;  // private duplicate, freed in the destructor
  bool async_ = false;
  std::thread worker_;
  mutable std::mutex mu_;
  bool running_ = false;
  std::exception_ptr error_;
  AsyncSaveStats stats_;
  // The snapshot: owned copies of the slabs' data, reused across saves.
  std::vector<std::vector<float>> buffers_;
  CheckpointSlabs slabs_;
};

}  // namespace llmpi
