#pragma once
// Whole-file integrity for checkpoints. The first 512 bytes of a checkpoint are an HDF5 user
// block (HDF5 and h5py skip it) holding a small header, written after the HDF5 file is closed:
//
//   offset  0  char[8]  magic "LLMPICK1"
//           8  u64      header version (1)
//          16  u64      payload offset (512): where the HDF5 bytes start
//          24  u64      payload size: file size − 512, so any truncation or extension shows
//          32  u64      digest of the payload (below)
//          40  u64      header check: splitmix64 chain over bytes 0..39
//   (little-endian; the rest of the 512 bytes is zero)
//
// digest = Σ_i splitmix64(w_i ⊕ splitmix64(i)) mod 2^64 over the payload's 8-byte words w_i
// (the last one zero-padded). A sum of per-word terms, so every rank hashes its own byte range
// and one all-reduce combines them. A reader checks this BEFORE handing the file to HDF5:
// a flipped or missing byte is rejected without the HDF5 parser ever seeing it.
#include <mpi.h>

#include <cstdint>
#include <string>

namespace llmpi {

inline constexpr uint64_t kIntegrityBlock = 512;

struct IntegrityHeader {
  uint64_t version = 1;
  uint64_t payload_offset = kIntegrityBlock;
  uint64_t payload_size = 0;
  uint64_t digest = 0;
};

// Collective over comm (or serial with MPI_COMM_NULL): digest of the bytes
// [offset, offset + size) of `path`, each rank reading a 1/P share.
uint64_t file_digest(const std::string& path, MPI_Comm comm, uint64_t offset, uint64_t size);

// Collective: computes the digest of `path` (an HDF5 file created with a 512-byte user
// block) and rank 0 writes the header and fsyncs. InternalError on an I/O failure.
void stamp_integrity(const std::string& path, MPI_Comm comm);

// Reads and checks the header alone (magic, version, header check, payload size against
// the file size). Returns "" when sound, else a message naming what is wrong.
std::string check_integrity_header(const std::string& path, IntegrityHeader& out);

// Collective: the header check plus the payload digest. Returns "" when the file is intact,
// else the reason (the same on every rank).
std::string check_integrity(const std::string& path, MPI_Comm comm);

}  // namespace llmpi
