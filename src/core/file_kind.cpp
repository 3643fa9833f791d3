// Refusing non-regular input files before open(); see file_kind.h.
#include "core/file_kind.h"

#include <sys/stat.h>

#include "core/error.h"

namespace llmpi {

std::string not_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "is a directory";
  const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO (named pipe)"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "a special file";
  return std::string("is not a regular file but ") + kind;
}

void require_regular_file(const std::string& path, const std::string& expected) {
  const std::string why = not_regular_file(path);
  if (!why.empty()) user_error(path, ": ", why, "; expected ", expected);
}

}  // namespace llmpi
