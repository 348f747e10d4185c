// use_tensorboard: TensorBoard event files as torch's SummaryWriter writes them (TFRecords of
// Event protos, read back here field by field), filled from the log records as HF's
// TensorBoardCallback fills them. TensorBoard 2.21's own EventAccumulator read a run's file alike
// (bench/results/2026-12-07-tensorboard.md).
#include <cstring>

#include "io/tensorboard.h"
#include "test/train_fixture.h"
#include "train/metrics.h"

using namespace llm;
using namespace llm::testing;

namespace {

struct Scalar {
  std::string tag;
  float value;
  int64_t step;
};

struct Events {
  std::string file_version;
  std::vector<Scalar> scalars;
};

uint64_t varint(const std::string& s, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(s.at(at++));
    v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return v;
  }
}

// Calls f(field, wire type, bytes of a length-delimited field or the fixed value's bytes, varint).
template <class F>
void fields(const std::string& message, F f) {
  for (size_t at = 0; at < message.size();) {
    const uint64_t key = varint(message, at);
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (wire == 0) {
      f(field, wire, std::string(), varint(message, at));
    } else if (wire == 2) {
      const size_t n = varint(message, at);
      f(field, wire, message.substr(at, n), 0);
      at += n;
    } else {
      const size_t n = wire == 1 ? 8 : 4;
      f(field, wire, message.substr(at, n), 0);
      at += n;
    }
  }
}

// Every record of an event file, its two CRCs checked; each event decoded.
Events read_events(const std::string& path) {
  const std::string bytes = read_file(path);
  Events out;
  for (size_t at = 0; at < bytes.size();) {
    uint64_t length = 0;
    uint32_t length_crc = 0, data_crc = 0;
    REQUIRE(at + 12 <= bytes.size());
    std::memcpy(&length, bytes.data() + at, 8);
    std::memcpy(&length_crc, bytes.data() + at + 8, 4);
    CHECK(length_crc == masked_crc32c(&length, 8));
    const std::string event = bytes.substr(at + 12, length);
    std::memcpy(&data_crc, bytes.data() + at + 12 + length, 4);
    CHECK(data_crc == masked_crc32c(event.data(), event.size()));
    at += 12 + length + 4;
    int64_t step = 0;
    std::vector<Scalar> values;
    fields(event, [&](int field, int, const std::string& data, uint64_t v) {
      if (field == 2) step = static_cast<int64_t>(v);
      if (field == 3) out.file_version = data;
      if (field != 5) return;
      fields(data, [&](int, int, const std::string& value, uint64_t) {  // Summary.value
        Scalar s{"", 0.0f, 0};
        fields(value, [&](int f, int, const std::string& d, uint64_t) {
          if (f == 1) s.tag = d;
          if (f == 2) std::memcpy(&s.value, d.data(), 4);
        });
        values.push_back(s);
      });
    });
    for (Scalar& s : values) s.step = step, out.scalars.push_back(s);
  }
  return out;
}

const Scalar* find(const Events& e, const std::string& tag, int64_t step) {
  for (const Scalar& s : e.scalars)
    if (s.tag == tag && s.step == step) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("crc32c: the Castagnoli check value, and TFRecord's mask") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  const uint32_t crc = crc32c("123456789", 9);
  CHECK(masked_crc32c("123456789", 9) == ((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
}

TEST_CASE("MetricsLog to TensorBoard: every number of a record a scalar at its step, tagged as HF's callback") {
  TempDir dir("tensorboard_log");
  MetricsLog log(dir.file("metrics.jsonl"), std::nullopt, std::nullopt, [](const std::string&) {});
  log.also_to_tensorboard(dir.file("runs/x"));
  log.train(3, 0.5, 2.25f, 1e-3, 0.75, 1000.0, ", \"ppl\": 9.4877");
  log.eval(3, 2.5f, ", \"eval_ppl\": 12.18249");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir.file("runs/x"))) files.push_back(entry.path().string());
  REQUIRE(files.size() == 1);
  CHECK(fs::path(files[0]).filename().string().rfind("events.out.tfevents.", 0) == 0);
  const Events e = read_events(files[0]);
  CHECK(e.file_version == "brain.Event:2");
  CHECK(e.scalars.size() == 8);  // epoch, loss, lr, grad_norm, tokens_per_s, ppl; eval_loss, eval_ppl
  const std::vector<std::pair<std::string, float>> expected = {
      {"train/loss", 2.25f},      {"train/learning_rate", 1e-3f}, {"train/grad_norm", 0.75f},
      {"train/epoch", 0.5f},      {"train/tokens_per_s", 1000.0f}, {"train/ppl", 9.4877f},
      {"eval/loss", 2.5f},        {"eval/ppl", 12.18249f}};
  for (const auto& [tag, value] : expected) {
    CAPTURE(tag);
    const Scalar* s = find(e, tag, 3);
    REQUIRE(s);
    CHECK(s->value == value);
  }
}

TEST_CASE("use_tensorboard: a run's log records in output_dir/runs/<time>_<host>, or TENSORBOARD_LOGGING_DIR") {
  Workspace ws("tensorboard");
  const Run run = run_train(ws.config("use_tensorboard: true\nmax_steps: 3\neval_steps: 3\n"));
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(ws.out("runs")))
    if (entry.is_regular_file()) files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  CHECK(run.output.find("use_tensorboard: every log record's numbers also go to " + files[0].parent_path().string()) !=
        std::string::npos);
  const Events e = read_events(files[0].string());
  const std::string metrics = read_file(ws.out("metrics.jsonl"));
  for (int64_t step = 1; step <= 3; step++) {
    CAPTURE(step);
    REQUIRE(find(e, "train/loss", step));
    CHECK(find(e, "train/learning_rate", step));
  }
  const Scalar* last_eval = find(e, "eval/loss", 3);
  REQUIRE(last_eval);
  const std::string record = metrics.substr(metrics.rfind("\"eval_loss\""));
  CHECK(last_eval->value == static_cast<float>(number_after(record, "\"eval_loss\":")));
  // HF's environment variable names the directory itself.
  const Run env = run_train(ws.config("use_tensorboard: true\nmax_steps: 1\n"),
                            "TENSORBOARD_LOGGING_DIR=" + (ws.dir / "tb").string() + " ");
  REQUIRE_MESSAGE(env.exit_code == 0, env.output);
  CHECK(std::distance(fs::directory_iterator(ws.dir / "tb"), fs::directory_iterator()) == 1);
}
