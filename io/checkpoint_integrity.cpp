#include "io/checkpoint_integrity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/file_kind.h"
#include "core/rng.h"

namespace llmpi {
namespace {

constexpr char kMagic[8] = {'L', 'L', 'M', 'P', 'I', 'C', 'K', '1'};
constexpr uint64_t kChunk = uint64_t(8) << 20;  // bytes per read

// An open POSIX file descriptor, closed on scope exit.
struct Fd {
  int fd = -1;
  Fd(const std::string& path, int flags) : fd(::open(path.c_str(), flags | O_CLOEXEC)) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t load_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void store_le(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint64_t header_check(const unsigned char* p) {
  uint64_t h = 0x6C6C6D7069ull;
  for (int i = 0; i < 5; ++i) h = splitmix64(h ^ load_le(p + 8 * i));
  return h;
}

// Reads exactly n bytes at off (false on a short read or an error).
bool read_at(int fd, unsigned char* buf, uint64_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, buf, n, off_t(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= uint64_t(r);
    off += uint64_t(r);
  }
  return true;
}

uint64_t file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return uint64_t(st.st_size);
}

}  // namespace

uint64_t file_digest(const std::string& path, MPI_Comm comm, uint64_t offset, uint64_t size) {
  int rank = 0, nranks = 1;
  if (comm != MPI_COMM_NULL) {
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
  }
  const uint64_t words = (size + 7) / 8;
  const uint64_t share = (words + uint64_t(nranks) - 1) / uint64_t(nranks);
  const uint64_t w0 = std::min(words, share * uint64_t(rank)), w1 = std::min(words, w0 + share);
  uint64_t sum = 0;
  int ok = 1;
  if (w1 > w0) {
    Fd f(path, O_RDONLY);
    ok = f.fd >= 0;
    std::vector<unsigned char> buf(size_t(std::min<uint64_t>(kChunk, (w1 - w0) * 8)));
    for (uint64_t w = w0; ok && w < w1;) {
      const uint64_t nw = std::min<uint64_t>(w1 - w, kChunk / 8);
      const uint64_t byte0 = w * 8, nbytes = std::min(nw * 8, size - byte0);
      std::fill(buf.begin(), buf.begin() + std::ptrdiff_t(nw * 8), 0);
      if (!read_at(f.fd, buf.data(), nbytes, offset + byte0)) {
        ok = 0;
        break;
      }
      for (uint64_t i = 0; i < nw; ++i)
        sum += splitmix64(load_le(buf.data() + 8 * i) ^ splitmix64(w + i));
      w += nw;
    }
  }
  if (comm != MPI_COMM_NULL) {
    uint64_t total = 0;
    int all_ok = 0;
    MPI_Allreduce(&sum, &total, 1, MPI_UINT64_T, MPI_SUM, comm);
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    sum = total;
    ok = all_ok;
  }
  // A short read means the file shrank under us: a different digest than any stamped one.
  return ok ? sum : ~sum;
}

void stamp_integrity(const std::string& path, MPI_Comm comm) {
  int rank = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
  uint64_t size = 0;
  if (rank == 0) {
    Fd f(path, O_RDONLY);
    if (f.fd < 0) throw InternalError(path + ": cannot reopen to stamp its integrity header");
    size = file_size(f.fd);
  }
  if (comm != MPI_COMM_NULL) MPI_Bcast(&size, 1, MPI_UINT64_T, 0, comm);
  LLMPI_CHECK(size >= kIntegrityBlock, path, " is smaller than its user block");
  const uint64_t payload = size - kIntegrityBlock;
  const uint64_t digest = file_digest(path, comm, kIntegrityBlock, payload);
  int ok = 1;
  if (rank == 0) {
    unsigned char h[kIntegrityBlock] = {};
    std::memcpy(h, kMagic, 8);
    store_le(h + 8, 1);
    store_le(h + 16, kIntegrityBlock);
    store_le(h + 24, payload);
    store_le(h + 32, digest);
    store_le(h + 40, header_check(h));
    Fd f(path, O_WRONLY);
    ok = f.fd >= 0 && ::pwrite(f.fd, h, sizeof h, 0) == ssize_t(sizeof h) && ::fsync(f.fd) == 0;
  }
  if (comm != MPI_COMM_NULL) MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  if (!ok) throw InternalError(path + ": cannot write its integrity header: " + std::strerror(errno));
}

std::string check_integrity_header(const std::string& path, IntegrityHeader& out) {
  // Before open(): a directory opens and reads as a short "file", and a FIFO blocks open().
  if (const std::string why = not_regular_file(path); !why.empty())
    return why + "; expected a checkpoint file (step_N.h5)";
  Fd f(path, O_RDONLY);
  if (f.fd < 0) return "cannot be opened (" + std::string(std::strerror(errno)) + ")";
  const uint64_t size = file_size(f.fd);
  unsigned char h[48];
  if (size < kIntegrityBlock || !read_at(f.fd, h, sizeof h, 0))
    return "is truncated: " + std::to_string(size) + " bytes, smaller than its header";
  if (std::memcmp(h, kMagic, 8) != 0)
    return "has no llmpi checkpoint header (not a checkpoint, or its first bytes are damaged)";
  if (load_le(h + 40) != header_check(h)) return "has a damaged integrity header";
  out.version = load_le(h + 8);
  out.payload_offset = load_le(h + 16);
  out.payload_size = load_le(h + 24);
  out.digest = load_le(h + 32);
  if (out.version != 1)
    return "has integrity header version " + std::to_string(out.version) + " (this llmpi reads 1)";
  if (out.payload_offset != kIntegrityBlock) return "has a bad payload offset in its header";
  if (out.payload_size != size - kIntegrityBlock)
    return "is " + std::string(size - kIntegrityBlock < out.payload_size ? "truncated" : "extended") +
           ": " + std::to_string(size) + " bytes, its header says " +
           std::to_string(out.payload_size + kIntegrityBlock);
  return "";
}

std::string check_integrity(const std::string& path, MPI_Comm comm) {
  IntegrityHeader h;
  std::string why = check_integrity_header(path, h);
  // Agree on the header verdict before the collective digest (ranks see the same file).
  int bad = !why.empty(), any_bad = bad;
  if (comm != MPI_COMM_NULL) MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm);
  if (any_bad) return why.empty() ? "is unreadable on another rank" : why;
  const uint64_t d = file_digest(path, comm, h.payload_offset, h.payload_size);
  if (d != h.digest) return "is corrupt: its content digest does not match its header";
  return "";
}

}  // namespace llmpi
