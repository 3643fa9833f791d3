#pragma once
// Room for a checkpoint, checked before the collective HDF5 write begins (issue #13 item 1).
// Inside HDF5 a failed write on one rank can leave the others waiting in a collective call
// (a hang), so a full disk must be found before HDF5 is entered: every rank checks its
// file-size limit (RLIMIT_FSIZE), rank 0 checks the free space of the directory and reserves
// the bytes by allocating them for the temporary file itself (fallocate; HDF5's create
// truncates it, so no other name is ever written). One agreement over comm: the verdict and
// its reason are the same on every rank.
#include <mpi.h>

#include <cstdint>
#include <string>

#include "io/checkpoint.h"

namespace llmpi {

// Bytes the checkpoint file of `slabs` and `meta` will take: the tensors every owner writes,
// the data mapping, and a margin for HDF5's metadata. Collective over comm (one all-reduce).
uint64_t estimated_checkpoint_bytes(const CheckpointSlabs& slabs, const CheckpointMeta& meta,
                                    MPI_Comm comm);

// "" on every rank when every rank can write a file of `bytes` at `tmp`; else the reason of
// the lowest failing rank, on every rank (tmp then does not exist). Collective over comm.
std::string reserve_checkpoint_space(const std::string& tmp, uint64_t bytes, MPI_Comm comm);

// Test hook (docs/user-guide.md): LLMPI_TEST_DISK_FULL="rank=R,bytes=N" makes the disk fill
// up during the write on rank R — after the room was checked — by lowering that rank's
// file-size limit to N bytes (SIGXFSZ ignored) while this object lives, so its writes past N
// fail inside HDF5 as they would with ENOSPC. Off unless set; UserError for a bad value.
class InjectedDiskFull {
 public:
  explicit InjectedDiskFull(int rank);
  ~InjectedDiskFull();
  InjectedDiskFull(const InjectedDiskFull&) = delete;
  InjectedDiskFull& operator=(const InjectedDiskFull&) = delete;

 private:
  bool active_ = false;
  uint64_t saved_cur_ = 0;
};

}  // namespace llmpi
