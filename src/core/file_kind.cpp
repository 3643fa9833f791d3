// Refusing non-regular input files before open(); see file_kind.h.
#include "core/file_kind.h"

#include <sys/stat.h>

#include "core/error.h"

namespace llmpi {
namespace {

// "a FIFO (named pipe)", ... for anything but a regular file or a directory.
const char* special_kind(mode_t mode) {
  return S_ISFIFO(mode)   ? "a FIFO (named pipe)"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISSOCK(mode) ? "a socket"
                          : "a special file";
}

}  // namespace

std::string not_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "is a directory";
  return std::string("is not a regular file but ") + special_kind(st.st_mode);
}

void require_regular_file(const std::string& path, const std::string& expected) {
  const std::string why = not_regular_file(path);
  if (!why.empty()) user_error(path, ": ", why, "; expected ", expected);
}

void require_run_directory(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) user_error(path, ": no such run directory");
  if (S_ISDIR(st.st_mode)) return;
  user_error(path, ": is ", S_ISREG(st.st_mode) ? "a regular file" : special_kind(st.st_mode),
             ", not a run directory");
}

}  // namespace llmpi
