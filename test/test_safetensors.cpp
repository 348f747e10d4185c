// safetensors: files built byte by byte from the format's description (so the reader is checked
// against the spec, not against our writer), write/read round trips, sharded directories with
// their index, and every damaged or foreign file refused with a message naming file and tensor.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "engine/user_error.h"
#include "test/test_files.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

namespace {

std::string bytes_of(const void* p, size_t n) {
  return std::string(static_cast<const char*>(p), n);
}
std::string u64(uint64_t v) { return bytes_of(&v, 8); }
std::string f32s(const std::vector<float>& v) { return bytes_of(v.data(), 4 * v.size()); }
std::string u16s(const std::vector<uint16_t>& v) { return bytes_of(v.data(), 2 * v.size()); }

// A safetensors file: the length, the header padded with spaces to 8 bytes, the data.
std::string safetensors_bytes(std::string header, const std::string& data) {
  header.resize((header.size() + 7) / 8 * 8, ' ');
  return u64(header.size()) + header + data;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The error opening `bytes` as a safetensors file gives ("" when it opens).
std::string open_error(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  return error_of([&] { SafetensorsFile f(path); });
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::vector<uint16_t> bits16(const Tensor& t) {
  const uint16_t* p = t.data<uint16_t>();
  return std::vector<uint16_t>(p, p + t.numel());
}

}  // namespace

TEST_CASE("a hand-built file with F32, BF16 and F16 tensors reads back exactly, in either dtype") {
  TempDir dir;
  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"}," + entry("a", "F32", "[2,2]", 0, 16) + "," +
      entry("b", "BF16", "[3]", 16, 22) + "," + entry("c", "F16", "[5]", 22, 32) + "," +
      entry("empty", "F32", "[0,4]", 32, 32) + "}";
  // bf16 1, -2, 0.15625; f16 1, -2, 0x3555 = 0.333251953125, the smallest subnormal 2^-24, -inf.
  const std::string data = f32s({1.0f, -2.0f, 0.5f, 3.25f}) + u16s({0x3f80, 0xc000, 0x3e20}) +
                           u16s({0x3c00, 0xc000, 0x3555, 0x0001, 0xfc00});
  const std::string path = dir.file("hand.safetensors");
  write_bytes(path, safetensors_bytes(header, data));

  SafetensorsFile f(path);
  CHECK(f.metadata().at("format") == "pt");
  REQUIRE(f.entries().size() == 4);
  CHECK(f.entries()[0].name == "a");  // header order
  CHECK(f.find("b")->shape == Shape{3});
  CHECK(f.find("b")->dtype == "BF16");
  CHECK(f.find("nope") == nullptr);

  Tensor a = f.read("a", DType::f32);
  CHECK(a.shape() == Shape{2, 2});
  CHECK(a.to_floats() == std::vector<float>{1.0f, -2.0f, 0.5f, 3.25f});
  CHECK(bits16(f.read("a", DType::bf16)) == std::vector<uint16_t>{0x3f80, 0xc000, 0x3f00, 0x4050});
  CHECK(f.read("b", DType::f32).to_floats() == std::vector<float>{1.0f, -2.0f, 0.15625f});
  CHECK(bits16(f.read("b", DType::bf16)) == std::vector<uint16_t>{0x3f80, 0xc000, 0x3e20});
  std::vector<float> c = f.read("c", DType::f32).to_floats();
  CHECK(c[0] == 1.0f);
  CHECK(c[1] == -2.0f);
  CHECK(c[2] == 0.333251953125f);
  CHECK(c[3] == std::ldexp(1.0f, -24));
  CHECK((std::isinf(c[4]) && c[4] < 0));
  CHECK(f.read("c", DType::bf16).to_floats()[0] == 1.0f);
  CHECK(f.read("empty", DType::f32).shape() == Shape{0, 4});
  CHECK(f.read("empty", DType::bf16).shape() == Shape{0, 4});  // no memcpy of null (UBSan, llm_fuzz)

  // The header may also come unpadded and without metadata.
  const std::string plain = "{" + entry("x", "F32", "[1]", 0, 4) + "}";
  write_bytes(path, u64(plain.size()) + plain + f32s({7.0f}));
  CHECK(SafetensorsFile(path).read("x", DType::f32).item() == 7.0f);
}

TEST_CASE(
    "write then read: f32 and bf16, header padded to 8, __metadata__ format pt, no .tmp left") {
  TempDir dir;
  Tensor w = randn({3, 5}), v = randn({7});
  const std::string path = dir.file("model.safetensors");
  write_safetensors(path, {{"w", w}, {"wt", w.transpose(0, 1)}, {"v", v}}, DType::f32);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const std::string bytes = read_bytes(path);
  uint64_t header_bytes;
  std::memcpy(&header_bytes, bytes.data(), 8);
  CHECK(header_bytes % 8 == 0);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_bytes));
  CHECK(header["__metadata__"]["format"] == "pt");
  CHECK(header["w"]["dtype"] == "F32");
  CHECK(header["w"]["data_offsets"] == nlohmann::json{0, 60});
  CHECK(header["wt"]["shape"] == nlohmann::json{5, 3});
  CHECK(header["v"]["data_offsets"] == nlohmann::json{120, 148});
  CHECK(bytes.size() == 8 + header_bytes + 148);

  SafetensorsFile f(path);
  CHECK(f.read("w", DType::f32).to_floats() == w.to_floats());
  CHECK(f.read("wt", DType::f32).to_floats() == w.transpose(0, 1).to_floats());
  CHECK(f.read("v", DType::f32).to_floats() == v.to_floats());

  write_safetensors(path, {{"w", w}}, DType::bf16);
  SafetensorsFile g(path);
  CHECK(g.find("w")->dtype == "BF16");
  CHECK(g.read("w", DType::f32).to_floats() == w.to(DType::bf16).to_floats());
}

TEST_CASE("a directory streamed from a table, its tensors in any order, has the bytes of one written whole") {
  TempDir whole, streamed;
  std::vector<NamedTensor> tensors;
  std::vector<TensorEntry> table;
  for (int i = 0; i < 5; i++) {
    tensors.push_back({"t" + std::to_string(i), randn({4, 4})});  // 64 bytes each: shards of 2, 2, 1
    table.push_back({tensors.back().name, DType::f32, {4, 4}});
  }
  write_safetensors_dir(whole.path, tensors, DType::bf16, 150);
  // Backwards, each tensor a fresh copy freed as soon as it is written (a ZeRO export's buckets).
  write_safetensors_dir(streamed.path, table, [&tensors](const TensorSink& put) {
    for (auto t = tensors.rbegin(); t != tensors.rend(); ++t) put(t->name, t->tensor.clone());
  }, DType::bf16, 150);
  for (const char* name : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                           "model-00003-of-00003.safetensors", "model.safetensors.index.json"})
    CHECK(read_bytes(streamed.file(name)) == read_bytes(whole.file(name)));
  // A producer that leaves a tensor out is a bug, caught before any file is in place.
  TempDir partial;
  CHECK_THROWS(write_safetensors_dir(partial.path, table, [&tensors](const TensorSink& put) {
    put(tensors[0].name, tensors[0].tensor);
  }, DType::bf16, 150));
  CHECK_FALSE(fs::exists(partial.file("model-00001-of-00003.safetensors")));
}

TEST_CASE(
    "sharded directories: shards of at most max_shard_bytes, the index, and back to one file") {
  TempDir dir;
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 5; i++)
    tensors.push_back({"t" + std::to_string(i), randn({4, 4})});  // 64 bytes each
  tensors.push_back({"big", randn({50})});  // 200 bytes: over the limit, a shard of its own
  write_safetensors_dir(dir.path, tensors, DType::f32, 150);

  // t0 t1 | t2 t3 | t4 | big
  for (const char* name : {"model-00001-of-00004.safetensors", "model-00004-of-00004.safetensors",
                           "model.safetensors.index.json"})
    CHECK(fs::exists(dir.file(name)));
  CHECK_FALSE(fs::exists(dir.file("model.safetensors")));
  nlohmann::json index =
      nlohmann::json::parse(read_bytes(dir.file("model.safetensors.index.json")));
  CHECK(index["metadata"]["total_size"] == 5 * 64 + 200);
  CHECK(index["weight_map"]["t1"] == "model-00001-of-00004.safetensors");
  CHECK(index["weight_map"]["t2"] == "model-00002-of-00004.safetensors");
  CHECK(index["weight_map"]["big"] == "model-00004-of-00004.safetensors");

  SafetensorsDir d(dir.path);
  CHECK(d.names().size() == 6);
  for (const NamedTensor& t : tensors)
    CHECK(d.read(t.name, DType::f32).to_floats() == t.tensor.to_floats());
  CHECK(contains(d.file_of("t4"), "model-00003-of-00004.safetensors"));

  // Rewritten as one file, the shards and the index go: the directory holds exactly the new set.
  write_safetensors_dir(dir.path, {tensors[0]}, DType::bf16);
  CHECK(fs::exists(dir.file("model.safetensors")));
  CHECK_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  CHECK_FALSE(fs::exists(dir.file("model-00001-of-00004.safetensors")));
  CHECK(SafetensorsDir(dir.path).names() == std::vector<std::string>{"t0"});
}

TEST_CASE("damaged or foreign files are refused with one line naming the file and the tensor") {
  TempDir dir;
  const std::string data = f32s({1, 2, 3, 4});
  auto one = [&](const std::string& e) { return safetensors_bytes("{" + e + "}", data); };
  const std::string good = one(entry("w", "F32", "[2,2]", 0, 16));
  REQUIRE(open_error(dir, good).empty());
  struct Case {
    std::string what, bytes;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"shorter than the length field", good.substr(0, 5), {"bad.safetensors", "truncated"}},
      {"cut inside the data", good.substr(0, good.size() - 3), {"tensor w", "truncated"}},
      {"header length beyond the file", u64(4096) + "{}", {"header length 4096", "truncated"}},
      {"offsets outside the data", one(entry("w", "F32", "[4]", 8, 24)), {"tensor w", "[8, 24)"}},
      {"size does not match dtype and shape",
       one(entry("w", "F32", "[2,2]", 0, 12)) + "xxxx",
       {"tensor w", "12 bytes", "F32[2, 2] needs 16"}},
      {"unknown dtype",
       one(entry("w", "I64", "[2]", 0, 16)),
       {"tensor w", "dtype I64 is not supported"}},
      {"bad JSON", safetensors_bytes("{\"w\": {", data), {"bad.safetensors", "expected a safetensors header, got invalid JSON"}},
      {"a NUL byte in the header", safetensors_bytes(std::string("{}\0junk", 7), data), {"a NUL byte at byte 3"}},
      {"not an object", safetensors_bytes("[1, 2]", data), {"expected a JSON object"}},
      {"a negative dimension", one(entry("w", "F32", "[-2,2]", 0, 16)), {"tensor w", "bad shape"}},
      {"offsets end before they begin",
       one(entry("w", "F32", "[0]", 16, 0)),
       {"tensor w", "end before"}},
      {"overlapping tensors",
       safetensors_bytes(
           "{" + entry("u", "F32", "[3]", 0, 12) + "," + entry("v", "F32", "[2]", 8, 16) + "}",
           data),
       {"tensor v", "overlap tensor u"}},
      {"a hole in the data",
       one(entry("w", "F32", "[2]", 8, 16)),
       {"data bytes [0, 8) belong to no tensor"}},
      {"bytes after the last tensor", one(entry("w", "F32", "[2]", 0, 8)), {"extra bytes"}},
      {"metadata that is not text",
       safetensors_bytes("{\"__metadata__\":{\"n\":1}}", ""),
       {"__metadata__.n"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string e = open_error(dir, c.bytes);
    CAPTURE(e);
    CHECK(contains(e, "bad.safetensors"));
    CHECK(e.find('\n') == std::string::npos);
    for (const std::string& part : c.expect) CHECK(contains(e, part));
  }

  const std::string path = dir.file("good.safetensors");
  write_bytes(path, good);
  SafetensorsFile f(path);
  const std::string missing = error_of([&] { f.read("model.norm.weight", DType::f32); });
  CHECK(contains(missing, "good.safetensors: tensor model.norm.weight is missing"));
  // A file that shrinks after its header was read is caught when the tensor is read.
  fs::resize_file(path, good.size() - 4);
  CHECK(contains(error_of([&] { f.read("w", DType::f32); }), "truncated"));
}

TEST_CASE(
    "model directories: missing weights, a broken index, a tensor placed in the wrong shard") {
  TempDir dir;
  CHECK(contains(error_of([&] { SafetensorsDir d(dir.path); }),
                 "no model.safetensors or model.safetensors.index.json"));
  write_safetensors_dir(dir.path, {{"a", randn({8})}, {"b", randn({8})}}, DType::f32, 40);
  const std::string index_path = dir.file("model.safetensors.index.json");
  const std::string index = read_bytes(index_path);

  write_bytes(index_path,
              "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": "
              "\"gone.safetensors\"}}");
  std::string e = error_of([&] { SafetensorsDir d(dir.path); });
  CHECK(contains(
      e,
      "model.safetensors.index.json: weight_map.b names gone.safetensors, which does not exist"));
  // A file name holding a newline is quoted on the message's one line (found by llm_fuzz).
  write_bytes(index_path, "{\"weight_map\": {\"a\": \"x\\ny.safetensors\"}}");
  CHECK(contains(error_of([&] { SafetensorsDir d(dir.path); }),
                 "weight_map.a names x\\ny.safetensors, which does not exist"));

  write_bytes(index_path,
              "{\"weight_map\": {\"a\": \"model-00002-of-00002.safetensors\", "
              "\"b\": \"model-00002-of-00002.safetensors\"}}");
  e = error_of([&] { SafetensorsDir d(dir.path); });
  CHECK(contains(e, "model-00002-of-00002.safetensors: tensor a is missing"));

  write_bytes(index_path, "{\"metadata\": {}}");
  CHECK(contains(error_of([&] { SafetensorsDir d(dir.path); }), "weight_map"));
  write_bytes(index_path, "{\"weight_map\": ");
  CHECK(error_of([&] { SafetensorsDir d(dir.path); }) ==
        index_path + ": expected a safetensors index (model.safetensors.index.json), got invalid JSON (byte 16)");
  write_bytes(index_path, index + std::string(1, '\0') + "junk");
  CHECK(contains(error_of([&] { SafetensorsDir d(dir.path); }), "got invalid JSON (a NUL byte at byte "));

  write_bytes(index_path, index);
  CHECK(SafetensorsDir(dir.path).names() == std::vector<std::string>{"a", "b"});

  // transformers reads model.safetensors before an index, so an index a sharded save left behind
  // (its shards gone) does not hide the single file beside it.
  const Tensor c = randn({4});
  write_safetensors(dir.file("model.safetensors"), {{"c", c}}, DType::f32);
  for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    fs::remove(dir.file(shard));
  const SafetensorsDir single(dir.path);
  CHECK(single.names() == std::vector<std::string>{"c"});
  CHECK(single.read("c", DType::f32).to_floats() == c.to_floats());
}

TEST_CASE("a sharded save removes an earlier single file before its index names the shards") {
  TempDir dir;
  write_safetensors_dir(dir.path, {{"a", randn({8})}}, DType::f32);
  REQUIRE(fs::exists(dir.file("model.safetensors")));
  const Tensor a = randn({8}), b = randn({8});
  write_safetensors_dir(dir.path, {{"a", a}, {"b", b}}, DType::f32, 40);
  CHECK_FALSE(fs::exists(dir.file("model.safetensors")));
  const SafetensorsDir d(dir.path);
  CHECK(d.read("b", DType::f32).to_floats() == b.to_floats());
}

TEST_CASE("headers the safetensors crate reads: __metadata__ null, an empty tensor at another's offset") {
  TempDir dir;
  const std::string data = f32s({1, 2});
  CHECK(open_error(dir, safetensors_bytes("{\"__metadata__\":null," + entry("w", "F32", "[2]", 0, 8) + "}", data))
            .empty());
  // Sorted by (begin, end) as the crate sorts: the empty tensor listed after w, at w's start.
  CHECK(open_error(dir, safetensors_bytes("{" + entry("w", "F32", "[2]", 0, 8) + "," +
                                              entry("e", "F32", "[0]", 0, 0) + "}", data))
            .empty());
}

TEST_CASE("sampled_checksum: one file or shards agree; a tensor's first or last 4 KiB, dtype or name changes it") {
  std::vector<NamedTensor> tensors = {{"big", randn({3000})}, {"small", randn({3})}};  // 12000 bytes in f32
  auto checksum = [&tensors](DType dtype, uint64_t shard_bytes) {
    TempDir dir;
    write_safetensors_dir(dir.path, tensors, dtype, shard_bytes);
    return SafetensorsDir(dir.path).sampled_checksum();
  };
  const uint32_t base = checksum(DType::f32, kDefaultMaxShardBytes);
  CHECK(checksum(DType::f32, 100) == base);  // two shards, the same tensors
  CHECK(checksum(DType::bf16, kDefaultMaxShardBytes) != base);
  std::vector<float> v = tensors[0].tensor.to_floats();
  const std::vector<float> saved = v;
  for (size_t i : {size_t(0), size_t(1023), size_t(1977), size_t(2999)}) {  // in the first or last 1024
    v = saved;
    v[i] += 1.0f;
    tensors[0].tensor = Tensor::from_floats(v, {3000});
    CHECK(checksum(DType::f32, kDefaultMaxShardBytes) != base);
  }
  v = saved;
  v[1500] += 1.0f;  // the middle, which the checksum does not read
  tensors[0].tensor = Tensor::from_floats(v, {3000});
  CHECK(checksum(DType::f32, kDefaultMaxShardBytes) == base);
  tensors[0].tensor = Tensor::from_floats(saved, {3000});
  tensors[1].name = "other";
  CHECK(checksum(DType::f32, kDefaultMaxShardBytes) != base);
}
