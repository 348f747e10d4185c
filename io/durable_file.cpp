// defines: fsync_dir, write_text_durably, AtomicFileWriter, write_text_atomically
#include "io/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/user_error.h"

namespace llm {

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw UserError(dir + ": cannot open directory: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw UserError(dir + ": fsync failed: " + std::strerror(err));
}

void write_text_durably(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw UserError(path + ": cannot create: " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
            ::fsync(::fileno(f)) == 0;
  int err = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) throw UserError(path + ": cannot write: " + std::strerror(err));
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_(path + ".tmp") {
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) throw UserError(tmp_ + ": cannot create: " + std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(tmp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  if (std::fwrite(data, 1, bytes, file_) != bytes)
    throw UserError(tmp_ + ": cannot write: " + std::strerror(errno));
}

void AtomicFileWriter::write_at(uint64_t offset, const void* data, size_t bytes) {
  if (::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0)
    throw UserError(tmp_ + ": cannot seek to byte " + std::to_string(offset) + ": " + std::strerror(errno));
  write(data, bytes);
}

void AtomicFileWriter::commit() {
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  int err = errno;
  FILE* f = file_;
  file_ = nullptr;  // closed below whatever happens; the destructor only removes the .tmp
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp_.c_str());
    throw UserError(tmp_ + ": cannot write: " + std::strerror(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    err = errno;
    std::remove(tmp_.c_str());
    throw UserError(tmp_ + ": cannot rename to " + path_ + ": " + std::strerror(err));
  }
  std::string dir = std::filesystem::path(path_).parent_path().string();
  fsync_dir(dir.empty() ? "." : dir);
}

void write_text_atomically(const std::string& path, const std::string& text) {
  AtomicFileWriter out(path);
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace llm
