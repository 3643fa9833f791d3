// Whole-file read and atomic write; see text_file.h.
#include "core/text_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_kind.h"

namespace llmpi {

std::string read_text_file(const std::string& path) {
  require_regular_file(path, "a text file");  // before open(): a FIFO would block it
  std::ifstream f(path, std::ios::binary);
  if (!f) user_error(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) user_error(path, ": read error");
  return ss.str();
}

std::string read_text_file_if_exists(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = temporary_of(path);
  std::remove(tmp.c_str());  // a link left there is removed, never written through
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) user_error(tmp, ": cannot create: ", std::strerror(errno));
    f << text;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      user_error(tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    user_error(path, ": cannot rename from ", tmp, ": ", std::strerror(errno));
  }
}

}  // namespace llmpi
