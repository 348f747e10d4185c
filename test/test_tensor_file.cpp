// Tensor files (io/tensor_file.h): round trip, streamed writes in any order giving the bytes
// written before saves streamed, alignment, CRCs and every corruption refused by name.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/user_error.h"
#include "io/tensor_file.h"
#include "test/tensor_file_edits.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

namespace {

std::vector<char> raw_bytes(const Tensor& t) {
  Tensor c = t.contiguous();
  const char* p = static_cast<const char*>(c.data_ptr());
  return std::vector<char>(p, p + c.nbytes());
}

TensorFile sample_file() {
  TensorFile file;
  Tensor m = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  file.add("f32", Tensor::from_floats({0.5f, -1.25f, 3e-8f}, {3}));
  file.add("bf16", Tensor::from_floats({1.0f, -2.5f, 1e10f, 0.1f}, {2, 2}).to(DType::bf16));
  file.add("i32", Tensor::from_ints({7, -8, 2147483647}, {3, 1}));
  file.add("scalar", Tensor::from_floats({42.0f}, {}));
  file.add("empty", Tensor::empty({0, 5}, DType::f32));
  file.add("transposed", m.transpose(0, 1));  // non-contiguous: saved as its contiguous copy
  file.metadata = {{"step", "12"}, {"rng", "1 2 3"}, {"note", "unicode \xc3\xa9 ok"}};
  return file;
}

}  // namespace

TEST_CASE("crc32 matches the IEEE check value") {
  CHECK(crc32("123456789", 9) == 0xcbf43926u);
  CHECK(crc32("12345", 5, crc32("6789", 0)) != 0xcbf43926u);
  CHECK(crc32("6789", 4, crc32("12345", 5)) == 0xcbf43926u);  // continues like zlib.crc32
}

TEST_CASE("crc32_combine: the CRC of pieces in order is the CRC of the whole, at any cut") {
  std::vector<unsigned char> bytes(10007);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
  const uint32_t whole = crc32(bytes.data(), bytes.size());
  for (size_t cut : {size_t(0), size_t(1), size_t(7), size_t(4096), size_t(10006), bytes.size()}) {
    CAPTURE(cut);
    const uint32_t a = crc32(bytes.data(), cut), b = crc32(bytes.data() + cut, bytes.size() - cut);
    CHECK(crc32_combine(a, b, bytes.size() - cut) == whole);
  }
  // Three pieces, as three ranks' slices.
  const uint32_t p0 = crc32(bytes.data(), 3000), p1 = crc32(bytes.data() + 3000, 5000);
  const uint32_t p2 = crc32(bytes.data() + 8000, bytes.size() - 8000);
  CHECK(crc32_combine(crc32_combine(crc32_combine(0, p0, 3000), p1, 5000), p2, bytes.size() - 8000) == whole);
  CHECK(crc32_combine(p1, p0, 3000) != whole);  // out of order
}

TEST_CASE("TensorFileReader: whole tensors checked as read, parts as the ranks' union, mismatches named") {
  TempDir tmp;
  const std::string path = tmp.file("t.bin");
  TensorFile in;
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); i++) values[i] = 0.25f * static_cast<float>(i);
  in.add("w", Tensor::from_floats(values, {10, 100}));
  in.add("b", Tensor::from_floats({1, 2, 3}, {3}));
  write_tensor_file(path, in);
  {
    TensorFileReader r(path);
    CHECK(r.file().path == path);
    CHECK(r.read("w", {10, 100}, DType::f32, 250, 500).to_floats() ==
          std::vector<float>(values.begin() + 250, values.begin() + 750));
    CHECK(r.read("b", {3}, DType::f32).to_floats() == std::vector<float>{1, 2, 3});
    CHECK(r.bytes_read() == 4 * (500 + 3));
    // One rank alone holding part of "w": the ranks' parts do not cover it.
    CHECK_THROWS_WITH(r.verify_parts(Communicator::get()), doctest::Contains("do not cover"));
    CHECK_THROWS_WITH(r.read("w", {100, 10}, DType::f32, 0, 1), doctest::Contains("tensor w is f32[10, 100]"));
    CHECK_THROWS_WITH(r.read("v", {3}, DType::f32), doctest::Contains((path + ": tensor v is missing").c_str()));
  }
  TensorFileReader whole(path);
  CHECK(whole.read("w", {10, 100}, DType::f32, 0, 1000).to_floats() == values);
  whole.verify_parts(Communicator::get());  // read whole: checked as it was read, nothing left
  flip_byte(path, data_offset(path, "w") + 4 * 999);
  TensorFileReader damaged(path);
  CHECK(damaged.read("w", {10, 100}, DType::f32, 0, 10).to_floats().size() == 10);  // a part: not checked alone
  CHECK_THROWS_WITH(damaged.read("w", {10, 100}, DType::f32), doctest::Contains("tensor w: checksum mismatch"));
}

TEST_CASE("tensor file round trip keeps order, dtypes, shapes, bytes and metadata") {
  TempDir tmp;
  std::string path = tmp.file("t.bin");
  TensorFile in = sample_file();
  write_tensor_file(path, in);
  TensorFile out = read_tensor_file(path);
  CHECK(out.path == path);
  CHECK(out.metadata == in.metadata);
  REQUIRE(out.tensors.size() == in.tensors.size());
  for (size_t i = 0; i < in.tensors.size(); i++) {
    CAPTURE(in.tensors[i].name);
    const Tensor& a = in.tensors[i].tensor;
    const Tensor& b = out.tensors[i].tensor;
    CHECK(out.tensors[i].name == in.tensors[i].name);
    CHECK(b.dtype() == a.dtype());
    CHECK(b.shape() == a.shape());
    CHECK(b.is_contiguous());
    CHECK(b.device().is_cpu());
    CHECK(raw_bytes(b) == raw_bytes(a));
  }
  CHECK(out.find("transposed")->to_floats() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(out.find("scalar")->item() == 42.0f);
  CHECK(out.find("missing") == nullptr);
  CHECK_NOTHROW(verify_tensor_file(path));

  nlohmann::json header = header_of(path);
  for (const auto& t : header["tensors"]) {
    CAPTURE(t.dump());
    CHECK(t["offset"].get<uint64_t>() % 4096 == 0);
    CHECK(t["offset"].get<uint64_t>() >= 4096);
  }
}

TEST_CASE("TensorFileWriter: tensors in any order give write_tensor_file's bytes, the format's bytes before streaming") {
  TempDir tmp;
  const TensorFile in = sample_file();
  const std::string whole = tmp.file("whole.bin"), streamed = tmp.file("streamed.bin");
  const uint32_t checksum = write_tensor_file(whole, in);
  TensorFileWriter out(streamed, in.metadata, source_of(in).table);
  // Backwards: the table, not the order they come in, places the tensors (a ZeRO save's come by bucket).
  for (auto t = in.tensors.rbegin(); t != in.tensors.rend(); ++t) out.write(t->name, t->tensor);
  CHECK(out.finish() == checksum);
  const std::string bytes = read_file(whole);
  CHECK(read_file(streamed) == bytes);
  // What the writer that held every tensor at once (before streaming, commit 6a3ae04) wrote for the
  // same file: a checkpoint saved now is byte for byte the one saved then.
  CHECK(bytes.size() == 20504);
  CHECK(crc32_hex(crc32(bytes.data(), bytes.size())) == "24dd5938");
  CHECK(crc32_hex(checksum) == "a1ceff67");

  TensorFileWriter partial(tmp.file("partial.bin"), in.metadata, source_of(in).table);
  partial.write("f32", *in.find("f32"));
  CHECK_THROWS(partial.write("f32", *in.find("f32")));  // twice
  CHECK_THROWS(partial.write("bf16", *in.find("f32")));  // not what the table says
  CHECK_THROWS(partial.finish());                        // tensors missing
}

TEST_CASE("a header longer than 4096 bytes pushes the data start to the next aligned offset") {
  TempDir tmp;
  std::string path = tmp.file("many.bin");
  TensorFile in;
  for (int i = 0; i < 200; i++)
    in.add("model.layers." + std::to_string(i) + ".self_attn.q_proj.weight",
           Tensor::full({3}, float(i), DType::f32));
  write_tensor_file(path, in);
  nlohmann::json header = header_of(path);
  CHECK(header.dump().size() > 8192);
  uint64_t first = header["tensors"][0]["offset"].get<uint64_t>();
  CHECK(first % 4096 == 0);
  CHECK(first >= 20 + header.dump().size());
  TensorFile out = read_tensor_file(path);
  REQUIRE(out.tensors.size() == 200);
  CHECK(out.tensors[199].tensor.to_floats() == std::vector<float>{199, 199, 199});
}

TEST_CASE("require() names the file and the tensor when the checkpoint does not match") {
  TempDir tmp;
  std::string path = tmp.file("t.bin");
  write_tensor_file(path, sample_file());
  TensorFile file = read_tensor_file(path);
  CHECK(file.require("i32", {3, 1}, DType::i32).to_ints()[1] == -8);
  CHECK(error_of([&] { file.require("i32", {3}, DType::i32); }) ==
        path + ": tensor i32 is i32[3, 1] but i32[3] was expected "
               "(checkpoint does not match the config)");
  CHECK(error_of([&] { file.require("nope", {1}, DType::f32); }) ==
        path + ": tensor nope is missing");
  CHECK(file.require_metadata("step") == "12");
  CHECK(error_of([&] { file.require_metadata("epoch"); }) ==
        path + ": metadata key \"epoch\" is missing");
}

TEST_CASE("damaged tensor files are refused with one line naming the file and the tensor") {
  TempDir tmp;
  std::string path = tmp.file("t.bin");
  auto fresh = [&] { write_tensor_file(path, sample_file()); };
  // Both readers must refuse, with the same message.
  auto refusal = [&] {
    std::string read = error_of([&] { read_tensor_file(path); });
    CHECK(error_of([&] { verify_tensor_file(path); }) == read);
    CHECK(read.find('\n') == std::string::npos);
    CHECK(read.rfind(path + ": ", 0) == 0);
    return read;
  };

  SUBCASE("truncated inside the last tensor") {
    fresh();
    uint64_t size = fs::file_size(path);
    uint64_t offset = data_offset(path, "transposed");
    fs::resize_file(path, size - 4);
    CHECK(refusal() == path + ": tensor transposed needs bytes [" + std::to_string(offset) +
                           ", " + std::to_string(offset + 24) + ") but the file has " +
                           std::to_string(size - 4) + " bytes (truncated?)");
  }
  SUBCASE("truncated inside the header and inside the magic") {
    fresh();
    fs::resize_file(path, 100);
    CHECK(contains(refusal(), ": header needs bytes [20, "));
    CHECK(contains(refusal(), ") but the file has 100 bytes (truncated?)"));
    fs::resize_file(path, 5);
    CHECK(refusal() ==
          path + ": the magic needs bytes [0, 8) but the file has 5 bytes (truncated?)");
  }
  SUBCASE("one flipped byte in a tensor's data names that tensor") {
    fresh();
    flip_byte(path, data_offset(path, "bf16") + 3);
    CHECK(refusal() == path + ": tensor bf16: checksum mismatch (file corrupt)");
  }
  SUBCASE("one flipped byte in the header") {
    fresh();
    flip_byte(path, 40);
    CHECK(refusal() == path + ": header checksum mismatch (file corrupt)");
  }
  SUBCASE("wrong magic") {
    fresh();
    overwrite(path, 0, "GGUF", 4);
    CHECK(refusal() == path +
                           ": not an llm_train checkpoint file (magic \"GGUFKPT\\x00\", "
                           "expected \"LLMCKPT\\x00\")");
  }
  SUBCASE("unsupported format version") {
    fresh();
    uint32_t version = 2;
    overwrite(path, 8, &version, 4);
    CHECK(refusal() == path + ": format version 2 is not supported (this build reads version 1)");
  }
  SUBCASE("a missing file") {
    CHECK(refusal() == path + ": cannot open: No such file or directory");
  }
}
