#pragma once
// MappedFile: a read-only memory map of a whole file (RAII: munmap + close on destruction).
// Token shards are read through it so that multi-GB files cost no copy and no heap; pages
// are faulted in on first touch. An empty file maps to (nullptr, 0). Move-only.
// Failure to open or map the file is a UserError naming the path and the OS reason; a path
// that is not a regular file (a FIFO would block open()) is refused first, saying `expected`.
#include <cstddef>
#include <cstdint>
#include <string>

namespace llmpi {

class MappedFile {
 public:
  explicit MappedFile(std::string path, const char* expected = "a regular file");
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace llmpi
