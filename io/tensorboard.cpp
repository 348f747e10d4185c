// defines: crc32c, masked_crc32c, tensorboard_file_name, tensorboard_dir, TensorBoardWriter (Event
// protos encoded by hand: the few fields a scalar needs)
#include "io/tensorboard.h"

#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "engine/user_error.h"

namespace llm {
namespace {

// Protobuf's wire format: a varint, then fields by (number << 3 | wire type).
void put_varint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += static_cast<char>((v & 0x7F) | 0x80);
  out += static_cast<char>(v);
}
template <class T>
void put_fixed(std::string& out, T v) {  // little-endian, as the machines this builds for
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event: wall_time (1, double), step (2, int64), then file_version (3) or summary (5).
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_varint(e, 1 << 3 | 1);
  put_fixed(e, wall_time);
  if (step != 0) {  // proto3 leaves a zero out
    put_varint(e, 2 << 3 | 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t bytes) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // Castagnoli, reversed
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t bytes) {
  const uint32_t crc = crc32c(data, bytes);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::string tensorboard_file_name(double wall_time) {
  return fmt::format("events.out.tfevents.{:010d}.{}.{}.0", static_cast<int64_t>(wall_time), host_name(),
                     static_cast<int64_t>(getpid()));
}

std::string tensorboard_dir(const std::string& output_dir) {
  if (const char* env = std::getenv("TENSORBOARD_LOGGING_DIR"); env && *env) {
    const std::string dir = env;
    const char* home = std::getenv("HOME");
    return dir.rfind("~/", 0) == 0 && home ? home + dir.substr(1) : dir;
  }
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[64] = {};
  std::strftime(stamp, sizeof(stamp), "%b%d_%H-%M-%S", &local);
  return (std::filesystem::path(output_dir) / "runs" / (std::string(stamp) + "_" + host_name())).string();
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const double wall_time = now_seconds();
  path_ = (std::filesystem::path(dir) / tensorboard_file_name(wall_time)).string();
  file_ = ec ? nullptr : std::fopen(path_.c_str(), "wb");
  if (!file_) throw UserError(path_ + ": expected to create a TensorBoard event file (use_tensorboard), could not");
  std::string event = event_header(wall_time, 0);
  put_bytes(event, 3, "brain.Event:2");
  record(event);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string summary_value;  // Summary.Value: tag (1), simple_value (2, float)
  put_bytes(summary_value, 1, tag);
  put_varint(summary_value, 2 << 3 | 5);
  put_fixed(summary_value, static_cast<float>(value));
  std::string summary;  // Summary: value (1, repeated)
  put_bytes(summary, 1, summary_value);
  std::string event = event_header(now_seconds(), step);
  put_bytes(event, 5, summary);
  record(event);
}

void TensorBoardWriter::flush() { std::fflush(file_); }

void TensorBoardWriter::record(const std::string& event) {
  std::string out;
  const uint64_t length = event.size();
  put_fixed(out, length);
  put_fixed(out, masked_crc32c(&length, sizeof(length)));
  out += event;
  put_fixed(out, masked_crc32c(event.data(), event.size()));
  if (std::fwrite(out.data(), 1, out.size(), file_) != out.size())
    throw UserError(path_ + ": could not write the TensorBoard event file (disk full?)");
}

}  // namespace llm
