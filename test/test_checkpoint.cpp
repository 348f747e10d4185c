// Tensor files (round trip, streamed writes in any order giving the bytes written before saves
// streamed, alignment, every corruption refused by name) and checkpoint directories (save, list,
// latest, prune, auto-resume fallback, survival of a SIGKILL mid-save, the manifest that seals
// them).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/tensor_file.h"
#include "engine/user_error.h"
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

nlohmann::json header_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char pre[20];
  in.read(pre, sizeof(pre));
  uint32_t length;
  std::memcpy(&length, pre + 12, 4);
  std::string text(length, '\0');
  in.read(text.data(), length);
  return nlohmann::json::parse(text);
}

uint64_t data_offset(const std::string& path, const std::string& tensor) {
  nlohmann::json header = header_of(path);
  for (const auto& t : header["tensors"])
    if (t["name"] == tensor) return t["offset"].get<uint64_t>();
  FAIL("no tensor " << tensor << " in " << path);
  return 0;
}

void overwrite(const std::string& path, uint64_t offset, const void* bytes, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  REQUIRE(f.good());
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= 0x10;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  REQUIRE(f.good());
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

constexpr const char* kRunId = "0123456789abcdef";

CheckpointContents small_contents(float value, const std::string& run_id = kRunId) {
  CheckpointContents c;
  c.run_id = run_id;
  c.config_yaml = "base_model: tiny\nlearning_rate: " + std::to_string(value) + "\n";
  c.model.add("model.embed_tokens.weight", Tensor::full({4, 3}, value, DType::f32));
  c.optimizer.add("exp_avg.model.embed_tokens.weight", Tensor::full({4, 3}, -value, DType::f32));
  c.trainer.add("rng_state", Tensor::from_ints({1, 2, 3}, {3}));
  c.trainer.metadata["value"] = std::to_string(value);
  return c;
}

std::vector<std::string> names_of(const std::vector<std::string>& dirs) {
  std::vector<std::string> names;
  for (const std::string& d : dirs) names.push_back(fs::path(d).filename().string());
  return names;
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

TEST_CASE("save, list, latest and load of checkpoint directories") {
  TempDir tmp;
  std::string out = tmp.file("out");
  CHECK(list_checkpoints(out).empty());
  CHECK(checkpoint_dir_name(7) == "step_000007");
  CHECK(checkpoint_dir_name(12345678) == "step_12345678");
  CHECK(checkpoint_step(out + "/step_000042/") == 42);
  CHECK(checkpoint_step(out + "/step_000042.tmp") == std::nullopt);
  CHECK(checkpoint_step(out + "/latest") == std::nullopt);

  std::string dir = save_checkpoint(out, 20, small_contents(2.0f));
  CHECK(dir == out + "/step_000020");
  save_checkpoint(out, 3, small_contents(0.3f));
  save_checkpoint(out, 100, small_contents(1.0f));
  CHECK(names_of(list_checkpoints(out)) ==
        std::vector<std::string>{"step_000003", "step_000020", "step_000100"});
  CHECK(read_latest_pointer(out) == "step_000100");

  CheckpointContents c = load_checkpoint(dir);
  CHECK(c.config_yaml == small_contents(2.0f).config_yaml);
  CHECK(c.model.require("model.embed_tokens.weight", {4, 3}, DType::f32).to_floats()[5] == 2.0f);
  CHECK(c.optimizer.tensors.at(0).tensor.to_floats()[0] == -2.0f);
  CHECK(c.trainer.require_metadata("value") == std::to_string(2.0f));
  CHECK(c.model.path == dir + "/model.bin");

  SUBCASE("saving a step again replaces it whole") {
    save_checkpoint(out, 20, small_contents(5.0f));
    CHECK(load_checkpoint(dir).model.tensors[0].tensor.to_floats()[0] == 5.0f);
    CHECK(names_of(list_checkpoints(out)).size() == 3);
    CHECK(read_latest_pointer(out) == "step_000020");
    for (const auto& entry : fs::directory_iterator(out))
      CHECK(entry.path().extension() != ".tmp");
  }
  SUBCASE("a missing file is named") {
    fs::remove(dir + "/optimizer.bin");
    CHECK(error_of([&] { load_checkpoint(dir); }) ==
          dir + "/optimizer.bin: missing (incomplete checkpoint)");
    fs::create_directory(dir + "/optimizer.bin");
    CHECK(error_of([&] { load_checkpoint(dir); }) ==
          dir + "/optimizer.bin: expected a file of the checkpoint, got a directory");
    CHECK(error_of([&] { load_checkpoint(out + "/step_000999"); }) ==
          out + "/step_000999: not a checkpoint directory (no such directory)");
    CHECK(error_of([&] { load_checkpoint(dir + "/model.bin"); }) ==
          dir + "/model.bin: not a checkpoint directory (a file)");
  }
}

TEST_CASE("leftover .tmp directories are never listed and are removed by the next save") {
  TempDir tmp;
  std::string out = tmp.file("out");
  save_checkpoint(out, 1, small_contents(1.0f));
  fs::create_directories(out + "/step_000002.tmp");
  std::ofstream(out + "/step_000002.tmp/model.bin") << "partial";
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001"});
  save_checkpoint(out, 3, small_contents(3.0f));
  CHECK_FALSE(fs::exists(out + "/step_000002.tmp"));
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001", "step_000003"});
}

TEST_CASE("prune keeps the newest save_total_limit, the kept step and latest's target") {
  TempDir tmp;
  std::string out = tmp.file("out");
  for (int step = 1; step <= 5; step++) save_checkpoint(out, step, small_contents(float(step)));

  SUBCASE("limit only") {
    prune_checkpoints(out, 2, std::nullopt);
    CHECK(names_of(list_checkpoints(out)) ==
          std::vector<std::string>{"step_000004", "step_000005"});
  }
  SUBCASE("limit plus the best step") {
    prune_checkpoints(out, 2, 1);
    CHECK(names_of(list_checkpoints(out)) ==
          std::vector<std::string>{"step_000001", "step_000004", "step_000005"});
    CHECK(load_checkpoint(out + "/step_000001").model.tensors[0].tensor.to_floats()[0] == 1.0f);
  }
  SUBCASE("a limit of 0 keeps everything") {
    prune_checkpoints(out, 0, std::nullopt);
    CHECK(list_checkpoints(out).size() == 5);
  }
  SUBCASE("the checkpoint latest points at survives even when older than the newest") {
    save_checkpoint(out, 2, small_contents(2.5f));  // resumed from an earlier step
    prune_checkpoints(out, 1, std::nullopt);
    CHECK(names_of(list_checkpoints(out)) ==
          std::vector<std::string>{"step_000002", "step_000005"});
  }
  for (const auto& entry : fs::directory_iterator(out)) CHECK(entry.path().extension() != ".tmp");
}

TEST_CASE("auto-resume skips damaged checkpoints with a warning and takes the previous one") {
  TempDir tmp;
  std::string out = tmp.file("out");
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  CHECK(find_latest_valid_checkpoint(out, warn) == std::nullopt);
  for (int step = 1; step <= 3; step++) save_checkpoint(out, step, small_contents(float(step)));
  CHECK(find_latest_valid_checkpoint(out, warn) == out + "/step_000003");
  CHECK(warnings.empty());

  std::string opt = out + "/step_000003/optimizer.bin";
  flip_byte(opt, data_offset(opt, "exp_avg.model.embed_tokens.weight"));
  fs::remove(out + "/step_000002/trainer.bin");
  CHECK(find_latest_valid_checkpoint(out, warn) == out + "/step_000001");
  CHECK(warnings == std::vector<std::string>{
                        opt + ": tensor exp_avg.model.embed_tokens.weight: checksum mismatch "
                              "(file corrupt); skipping " + out + "/step_000003",
                        out + "/step_000002/trainer.bin: missing (incomplete checkpoint); "
                              "skipping " + out + "/step_000002"});
}

TEST_CASE("a process killed with SIGKILL mid-save leaves the previous checkpoint loadable") {
  TempDir tmp;
  std::string out = tmp.file("out");
  save_checkpoint(out, 1, small_contents(1.0f));
  CheckpointContents big = small_contents(2.0f);
  for (int i = 0; i < 8; i++)  // 64 MB: tens of milliseconds to checksum, write and fsync
    big.model.add("big." + std::to_string(i), Tensor::full({2 << 20}, float(i), DType::f32));

  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      save_checkpoint(out, 2, big);
    } catch (...) {
    }
    _exit(0);
  }
  // Kill the child once model.bin has data on its way to disk, well before the rename.
  std::string partial = out + "/step_000002.tmp/model.bin";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::error_code ec;
  while (fs::file_size(partial, ec) == 0 || ec) {
    if (std::chrono::steady_clock::now() > deadline) break;
    usleep(100);
  }
  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));  // the child was interrupted, not finished
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(fs::exists(out + "/step_000002.tmp"));

  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001"});
  CHECK(read_latest_pointer(out) == "step_000001");
  std::vector<std::string> warnings;
  CHECK(find_latest_valid_checkpoint(out, [&](const std::string& w) { warnings.push_back(w); }) ==
        out + "/step_000001");
  CHECK(warnings.empty());
  CHECK(load_checkpoint(out + "/step_000001").model.tensors[0].tensor.to_floats()[0] == 1.0f);

  save_checkpoint(out, 3, small_contents(3.0f));
  CHECK_FALSE(fs::exists(out + "/step_000002.tmp"));
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001", "step_000003"});
}

TEST_CASE("a manifest seals a checkpoint: a foreign, edited or cut file is refused by name") {
  TempDir tmp;
  std::string out = tmp.file("out");
  std::string one = save_checkpoint(out, 1, small_contents(1.0f));
  std::string two = save_checkpoint(out, 2, small_contents(2.0f));
  const std::string manifest = one + "/manifest.json";
  nlohmann::json m = nlohmann::json::parse(read_file(manifest));
  CHECK(m["format"] == 1);
  CHECK(m["step"] == 1);
  CHECK(m["run_id"] == kRunId);
  CHECK(m["files"].size() == 4);
  CHECK(m["files"]["config.yaml"]["bytes"] == fs::file_size(one + "/config.yaml"));
  CHECK(load_checkpoint(one).run_id == kRunId);
  CHECK(load_checkpoint(one).sealed);
  CHECK(load_checkpoint(one).trainer.require_metadata("step") == "1");
  CHECK(load_checkpoint(one).model.require_metadata("run_id") == kRunId);
  // Both readers refuse with the same one line, which names the file.
  auto refusal = [](const std::string& dir) {
    std::string load = error_of([&] { load_checkpoint(dir); });
    CHECK(error_of([&] { verify_checkpoint(dir); }) == load);
    CHECK(load.find('\n') == std::string::npos);
    return load;
  };

  SUBCASE("trainer.bin from another step") {
    fs::copy_file(two + "/trainer.bin", one + "/trainer.bin", fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == one + "/trainer.bin: written at step 2, but manifest.json seals step 1 "
                                "(a file from another checkpoint)");
  }
  SUBCASE("model.bin from another run at the same step") {
    save_checkpoint(tmp.file("other"), 1, small_contents(1.0f, "fedcba9876543210"));
    fs::copy_file(tmp.file("other") + "/step_000001/model.bin", one + "/model.bin",
                  fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == one + "/model.bin: written by run fedcba9876543210, but manifest.json "
                                "seals run 0123456789abcdef (a file from another run)");
  }
  SUBCASE("an edited config.yaml, and one cut short") {
    std::string config = read_file(one + "/config.yaml");
    config[config.find("learning_rate: 1") + 15] = '9';  // same length, other value
    write_file(one + "/config.yaml", config);
    CHECK(contains(refusal(one), one + "/config.yaml: checksum "));
    CHECK(contains(refusal(one), ", but manifest.json records "));
    CHECK(error_of([&] { read_checkpoint_config(one); }) == refusal(one));
    fs::resize_file(one + "/config.yaml", 5);
    CHECK(refusal(one) == one + "/config.yaml: 5 bytes, but manifest.json records " +
                              std::to_string(config.size()) +
                              " (truncated, or changed after the checkpoint was sealed)");
  }
  SUBCASE("a manifest from another step") {
    fs::copy_file(two + "/manifest.json", manifest, fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == manifest + ": seals step 2, but the directory is step_000001 "
                                     "(a manifest from another checkpoint)");
  }
  SUBCASE("a damaged manifest") {
    write_file(manifest, "{\"format\": 1, \"step\": ");
    CHECK(refusal(one) == manifest + ": expected a checkpoint manifest, got invalid JSON (byte 23)");
  }
  SUBCASE("without a manifest (written before manifests): loads, reported unsealed") {
    fs::remove(manifest);
    CHECK_FALSE(verify_checkpoint(one));
    CheckpointContents c = load_checkpoint(one);
    CHECK_FALSE(c.sealed);
    CHECK(c.run_id.empty());
    CHECK(c.model.require("model.embed_tokens.weight", {4, 3}, DType::f32).to_floats()[0] == 1.0f);
  }
  SUBCASE("auto-resume falls back past a checkpoint whose files do not belong together") {
    fs::copy_file(one + "/trainer.bin", two + "/trainer.bin", fs::copy_options::overwrite_existing);
    std::vector<std::string> warnings;
    CHECK(find_latest_valid_checkpoint(out, [&](const std::string& w) { warnings.push_back(w); }) == one);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == two + "/trainer.bin: written at step 1, but manifest.json seals step 2 "
                               "(a file from another checkpoint); skipping " + two);
  }
}
