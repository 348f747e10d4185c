// defines: gzip_decompress, zstd_decompress, read_data_file, read_utf8_data_file,
// require_utf8_value, without_compression_suffix
#include "io/decompress.h"

#include <fmt/core.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "engine/user_error.h"
#include "io/ends_with.h"
#include "io/json_text.h"  // read_whole_file
#include "io/python_text.h"

namespace llm {
namespace {

// Output grows by doubling from a guess (compressed text is usually 3-10x smaller) up to one byte
// past the limit: a stream that ends exactly at its limit still has room to finish (its trailer),
// and one that writes that byte is over it.
size_t capacity(size_t limit) { return limit == kNoSizeLimit ? limit : limit + 1; }

size_t first_capacity(size_t compressed, size_t limit) {
  return std::min(capacity(limit), std::max<size_t>(compressed * 4, 4096));
}

void check_limit(size_t used, const std::string& what, size_t limit) {
  if (used > limit)
    throw UserError(what + ": damaged compressed data: more than the " + std::to_string(limit) +
                    " bytes its header says");
}

void grow(std::string& out, size_t used, const std::string& what, size_t limit) {
  check_limit(used, what, limit);
  out.resize(std::min(capacity(limit), std::max(out.size() * 2, used + 4096)));
}

}  // namespace

std::string gzip_decompress(std::string_view compressed, const std::string& what, size_t limit) {
  z_stream z{};
  // 15 + 32: the largest window, with a gzip or zlib header recognized by its first bytes.
  if (inflateInit2(&z, 15 + 32) != Z_OK) throw UserError(what + ": zlib could not start inflating");
  const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  std::string out(first_capacity(compressed.size(), limit), '\0');
  size_t used = 0;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = 0;
  size_t fed = 0;
  for (;;) {
    if (z.avail_in == 0 && fed < compressed.size()) {  // avail_in is 32-bit: fed in slices
      const size_t slice = std::min<size_t>(compressed.size() - fed, 1u << 30);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + fed));
      z.avail_in = static_cast<uInt>(slice);
      fed += slice;
    }
    if (used == out.size()) grow(out, used, what, limit);
    const size_t room = std::min<size_t>(out.size() - used, 1u << 30);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&z, Z_NO_FLUSH);
    used += room - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0 && fed == compressed.size()) break;
      inflateReset(&z);  // another gzip member follows
      continue;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == compressed.size())
      throw UserError(what + ": damaged gzip data: it ends inside its stream (a truncated file?)");
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw UserError(what + ": damaged gzip data: " + (z.msg ? z.msg : "zlib error " + std::to_string(rc)));
  }
  check_limit(used, what, limit);
  out.resize(used);
  return out;
}

std::string zstd_decompress(std::string_view compressed, const std::string& what, size_t limit) {
  const std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw UserError(what + ": libzstd could not start decompressing");
  std::string out(first_capacity(compressed.size(), limit), '\0');
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  ZSTD_outBuffer to{out.data(), out.size(), 0};
  size_t frame_left = 1;  // what the current frame still needs: 0 between frames
  while (in.pos < in.size || frame_left != 0) {
    if (to.pos == to.size) {
      grow(out, to.pos, what, limit);
      to.dst = out.data();
      to.size = out.size();
    }
    const size_t before_in = in.pos, before_out = to.pos;
    frame_left = ZSTD_decompressStream(ctx.get(), &to, &in);
    if (ZSTD_isError(frame_left))
      throw UserError(what + ": damaged Zstandard data: " + ZSTD_getErrorName(frame_left));
    if (in.pos == in.size && frame_left != 0 && to.pos < to.size && in.pos == before_in && to.pos == before_out)
      throw UserError(what + ": damaged Zstandard data: it ends inside a frame (a truncated file?)");
  }
  check_limit(to.pos, what, limit);
  out.resize(to.pos);
  return out;
}

std::string read_utf8_data_file(const std::string& path, const std::string& expected) {
  std::string text = read_data_file(path, expected);
  if (const size_t at = first_ill_formed_utf8(text); at != std::string::npos) {
    const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1;
    throw UserError(fmt::format("{}:{}: expected UTF-8 text, as HF's loaders decode the file, got the byte 0x{:02X}, "
                                "which no UTF-8 character holds there (convert the file, e.g. iconv -f latin1 -t utf-8)",
                                path, line, static_cast<unsigned char>(text[at])));
  }
  return text;
}

void require_utf8_value(const std::string& value, const std::string& file, const std::string& column) {
  if (const size_t at = first_ill_formed_utf8(value); at != std::string::npos)
    throw UserError(fmt::format("{}: column {} holds a text value that is no UTF-8 (the byte 0x{:02X} at its byte {}), "
                                "which pyarrow refuses to decode for HF's loaders; expected UTF-8 strings",
                                file, column, static_cast<unsigned char>(value[at]), at));
}

std::string without_compression_suffix(const std::string& path) {
  for (const char* suffix : {".gz", ".zst"})
    if (ends_with(path, suffix)) return path.substr(0, path.size() - std::char_traits<char>::length(suffix));
  return path;
}

std::string read_data_file(const std::string& path, const std::string& expected) {
  std::string bytes = read_whole_file(path, expected);
  if (bytes.compare(0, 2, "\x1f\x8b") == 0) return gzip_decompress(bytes, path);
  if (bytes.compare(0, 4, "\x28\xb5\x2f\xfd") == 0) return zstd_decompress(bytes, path);
  if (ends_with(path, ".gz") || ends_with(path, ".zst"))
    throw UserError(path + ": expected " + (ends_with(path, ".gz") ? "gzip" : "Zstandard") +
                    " data, as its name says, got other bytes");
  return bytes;
}

}  // namespace llm
