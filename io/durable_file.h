// Durable file writes: bytes count as written only once fsynced, and a replaced file changes
// atomically (written to PATH.tmp, fsynced, renamed over PATH, the directory fsynced), so a crash
// at any instant leaves the old file or the new one, never half of either.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace llm {

// A rename or a new file is durable only once its directory's entry is on disk.
void fsync_dir(const std::string& dir);

// Creates or overwrites `path` in place with `text`, fsynced (for files inside a directory that
// is itself renamed into place afterwards).
void write_text_durably(const std::string& path, const std::string& text);

// Streams bytes into PATH.tmp; commit() puts the finished file at PATH. Destroyed without a
// commit (an error mid-write), it removes PATH.tmp.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  // `bytes` at `offset` from the file's start (a file whose parts come out of order); write()
  // goes on from where this ends.
  void write_at(uint64_t offset, const void* data, size_t bytes);
  void commit();

 private:
  std::string path_, tmp_;
  FILE* file_ = nullptr;
};

// Replaces `path` with `text` atomically.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace llm
