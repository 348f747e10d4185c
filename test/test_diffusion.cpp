// Diffusion LM training (Axolotl's DiffusionPlugin, train/diffusion.h): the forward process's
// draws, the model's bidirectional, shifted scoring against logits computed in full, its
// gradients, and runs of llm_train that train, evaluate and resume exactly.
#include <algorithm>
#include <cmath>

#include "engine/ops.h"
#include "model/llama.h"
#include "test/mpirun.h"
#include "test/test_util.h"
#include "test/train_fixture.h"
#include "train/diffusion.h"

using namespace llm;
using namespace llm::testing;

namespace {

constexpr int32_t kMask = 99, kBos = 1, kEos = 2;

// Two rows of 6: row 0 a prompt (labels -100) then an answer ending in EOS; row 1 all labelled
// after its BOS, then padding (0, label -100).
const std::vector<int32_t> kInputs = {kBos, 10, 11, 12, 13, kEos, kBos, 20, 21, 22, 0, 0};
const std::vector<int32_t> kLabels = {-100, -100, -100, 12, 13, kEos, kBos, 20, 21, 22, -100, -100};

DiffusionSettings settings(double eps, bool weighting = true) {
  DiffusionSettings s;
  s.on = true, s.eps = eps, s.importance_weighting = weighting;
  return s;
}

LlamaConfig small_config() {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 23;
  c.rope = {10000.0f, 4.0f, 1.0f, 4.0f, 16};
  c.initializer_range = 0.2f;
  return c;
}

}  // namespace

TEST_CASE("draw: with eps 1 every labelled token but the specials is masked, scored one row to its left") {
  const DiffusionDraw d = draw_diffusion_masks(kInputs, kLabels, 2, 6, settings(1.0), kMask, {kBos, kEos, 0}, 5);
  // Row 0: 12 and 13 (EOS is special); row 1: 20, 21, 22 (BOS is special). Prompt and padding never.
  CHECK(d.noisy == std::vector<int32_t>{kBos, 10, 11, kMask, kMask, kEos, kBos, kMask, kMask, kMask, 0, 0});
  CHECK(d.masked == 5);
  CHECK(d.targets == std::vector<int32_t>{12, 13, 20, 21, 22});
  CHECK(d.rows == std::vector<int32_t>{2, 3, 6, 7, 8});
  CHECK(d.sequences == std::vector<int32_t>{0, 0, 1, 1, 1});
  // p = 1: each row's loss over its labelled tokens (3 and 4), the mean over 2 rows.
  CHECK(d.coefficients[0] == doctest::Approx(-1.0 / (3 * 2)));
  CHECK(d.coefficients[1] == doctest::Approx(-1.0 / (4 * 2)));
}

TEST_CASE("draw: position 0 is scored by its own row; importance weights 1/p; none masked keeps one empty entry") {
  const std::vector<int32_t> inputs = {7, 8}, labels = {7, 8};
  const DiffusionDraw all = draw_diffusion_masks(inputs, labels, 1, 2, settings(1.0, false), kMask, {}, 1);
  CHECK(all.rows == std::vector<int32_t>{0, 0});
  CHECK(all.coefficients[0] == doctest::Approx(-0.5));
  // eps 0: p = t; the weight 1/p is each row's, and a row with nothing masked weighs 0 (p may be 0).
  for (uint64_t seed = 0; seed < 20; seed++) {
    const DiffusionDraw d = draw_diffusion_masks(kInputs, kLabels, 2, 6, settings(0.0), kMask, {kBos, kEos, 0}, seed);
    for (int b = 0; b < 2; b++) {
      const bool any = std::find(d.sequences.begin(), d.sequences.end(), b) != d.sequences.end() && d.masked > 0;
      CHECK(std::isfinite(d.coefficients[b]));
      if (any) CHECK(d.coefficients[b] <= -1.0 / ((b == 0 ? 3 : 4) * 2) + 1e-6);
      else CHECK(d.coefficients[b] == 0.0f);
    }
    if (d.masked == 0) {
      CHECK(d.targets == std::vector<int32_t>{kIgnoreIndex});
      CHECK(d.rows.size() == 1);
    }
  }
  const std::vector<int32_t> prompt_only(6, -100);
  const DiffusionDraw none = draw_diffusion_masks(std::vector<int32_t>(6, 5), prompt_only, 1, 6, settings(1.0), kMask, {}, 3);
  CHECK(none.masked == 0);
  CHECK(none.targets == std::vector<int32_t>{kIgnoreIndex});
}

TEST_CASE("draw: a function of the seed; the masked share averages (1 - eps) / 2 + eps") {
  const DiffusionSettings s = settings(0.1);
  CHECK(draw_diffusion_masks(kInputs, kLabels, 2, 6, s, kMask, {}, 11).noisy ==
        draw_diffusion_masks(kInputs, kLabels, 2, 6, s, kMask, {}, 11).noisy);
  const int64_t S = 64;
  std::vector<int32_t> inputs(S, 3), labels(S, 3);
  double masked = 0;
  const int draws = 2000;
  bool differ = false;
  std::vector<int32_t> first;
  for (int seed = 0; seed < draws; seed++) {
    const DiffusionDraw d = draw_diffusion_masks(inputs, labels, 1, S, s, kMask, {}, static_cast<uint64_t>(seed));
    masked += static_cast<double>(d.masked) / S;
    if (seed == 0) first = d.noisy;
    differ = differ || d.noisy != first;
  }
  CHECK(differ);
  CHECK(masked / draws == doctest::Approx(0.9 / 2 + 0.1).epsilon(0.03));
}

TEST_CASE("row_logps: bidirectional logits within documents, the scored rows' log-likelihoods by sequence") {
  LlamaModel model(small_config(), Device::cpu(), 4);
  const int64_t B = 2, S = 5;
  const Tensor ids = Tensor::from_ints({1, 5, 6, 7, 8, 1, 9, 10, 0, 0}, {B, S});
  const Tensor positions = Tensor::from_ints({0, 1, 2, 3, 4, 0, 1, 2, 3, 4}, {B, S});
  ForwardOptions opt;
  opt.bidirectional = true;
  opt.doc_ids = Tensor::from_ints({0, 0, 0, 1, 1, 0, 0, 0, 1, 1}, {B, S});  // row 1's padding a document of its own
  const std::vector<int32_t> rows = {0, 0, 2, 3, 6}, targets = {1, 5, 7, 8, 10}, sequences = {0, 0, 0, 0, 1};
  const Tensor rows_t = Tensor::from_ints(rows, {5}), targets_t = Tensor::from_ints(targets, {5});
  const Tensor seq_t = Tensor::from_ints(sequences, {5});
  NoGradGuard no_grad;
  const std::vector<float> got = model.row_logps(ids, positions, rows_t, targets_t, seq_t, B, opt).to_floats();
  const std::vector<float> logits = model.logits(ids, positions, opt).to_floats();
  const int64_t V = model.config().vocab_size;
  std::vector<double> want(B, 0.0);
  for (size_t k = 0; k < rows.size(); k++) {
    const float* row = logits.data() + rows[k] * V;
    double lse = 0, top = row[0];
    for (int64_t v = 0; v < V; v++) top = std::max<double>(top, row[v]);
    for (int64_t v = 0; v < V; v++) lse += std::exp(row[v] - top);
    want[sequences[k]] += row[targets[k]] - top - std::log(lse);
  }
  CHECK(got[0] == doctest::Approx(want[0]).epsilon(1e-5));
  CHECK(got[1] == doctest::Approx(want[1]).epsilon(1e-5));
  // The accuracy's count: the scored rows' argmaxes as targets hit, one past them misses.
  std::vector<int32_t> argmaxes(rows.size());
  for (size_t k = 0; k < rows.size(); k++) {
    const float* row = logits.data() + rows[k] * V;
    argmaxes[k] = static_cast<int32_t>(std::max_element(row, row + V) - row);
  }
  argmaxes[2] = (argmaxes[2] + 1) % static_cast<int32_t>(V);
  Tensor hits;
  model.row_logps(ids, positions, rows_t, Tensor::from_ints(argmaxes, {5}), seq_t, B, opt, &hits);
  CHECK(hits.to_floats() == std::vector<float>{3, 1});
  // Bidirectional: position 0's logits read a later token of its document, and not another's.
  const Tensor later = Tensor::from_ints({1, 5, 11, 7, 8, 1, 9, 10, 0, 0}, {B, S});
  const Tensor other_doc = Tensor::from_ints({1, 5, 6, 12, 8, 1, 9, 10, 0, 0}, {B, S});
  const float base0 = logits[0];
  CHECK(model.logits(later, positions, opt).to_floats()[0] != doctest::Approx(base0).epsilon(1e-6));
  CHECK(model.logits(other_doc, positions, opt).to_floats()[0] == doctest::Approx(base0).epsilon(1e-6));
}

TEST_CASE("row_logps: gradients through the gathered rows and the bidirectional model match finite differences") {
  LlamaModel model(small_config(), Device::cpu(), 6);
  const Tensor ids = Tensor::from_ints({1, 5, 6, 7, 8, 9}, {1, 6});
  const Tensor positions = Tensor::from_ints({0, 1, 2, 3, 4, 5}, {1, 6});
  ForwardOptions opt;
  opt.bidirectional = true;
  opt.doc_ids = Tensor::from_ints({0, 0, 0, 0, 0, 1}, {1, 6});
  const Tensor rows = Tensor::from_ints({0, 0, 3, 3}, {4}), targets = Tensor::from_ints({4, 5, 8, 2}, {4});
  const Tensor sequences = Tensor::from_ints({0, 1, 1, 0}, {4});
  for (auto& p : model.parameters()) {
    if (p.name != "model.layers.0.self_attn.k_proj.weight" && p.name != "lm_head.weight") continue;
    CAPTURE(p.name);
    for (auto& q : model.parameters()) q.tensor->zero_grad();
    Tensor* t = p.tensor;
    check_gradients([&](const std::vector<Tensor>& in) {
      Tensor saved = *t;
      *t = in[0];
      Tensor l = model.row_logps(ids, positions, rows, targets, sequences, 2, opt);
      *t = saved;
      return l;
    }, {*t});
  }
}

namespace {

const std::string kDiffusion =
    "plugins:\n  - axolotl.integrations.diffusion.DiffusionPlugin\n"
    "diffusion:\n  noise_schedule: cosine\n  eps: 0.001\n  importance_weighting: true\n  mask_token_id: 128002\n"
    "  generate_samples: true\n  generation_interval: 250\n";

}  // namespace

// metrics.jsonl's records without their speed, which differs run to run.
std::vector<std::string> records_without_speed(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(", \"tokens_per_s\"");
    if (at != std::string::npos) line.erase(at, line.find_first_of(",}", at + 2) - at);
    out.push_back(line);
  }
  return out;
}

TEST_CASE("llm_train: a diffusion run adds its mask token, trains, evaluates and resumes exactly, metrics too") {
  Workspace straight("diffusion_straight"), resumed("diffusion_resumed");
  std::string out;
  const std::string cfg = kDiffusion + "max_steps: 4\nsave_steps: 2\neval_steps: 2\n";
  out = check_resume_exact(straight, resumed, cfg, nullptr, "", 2);
  CHECK(records_without_speed(straight.out("metrics.jsonl")) == records_without_speed(resumed.out("metrics.jsonl")));
  const std::string metrics = read_file(straight.out("metrics.jsonl"));
  for (const char* key : {"\"ce_loss\"", "\"accuracy\"", "\"mask_ratio\"", "\"num_masked_tokens\"", "\"avg_p_mask\"",
                          "\"answer_ratio\"", "\"avg_answer_length\"", "\"importance_weight_avg\"", "\"eval_ce_loss\"",
                          "\"eval_accuracy\""})
    CHECK_MESSAGE(metrics.find(key) != std::string::npos, key);
  // 128002 is past the byte tokenizer's plain tokens: <|diffusion_mask|> is added, as Axolotl adds it.
  CHECK_MESSAGE(out.find("diffusion: mask token <|diffusion_mask|> (id 259, added)") != std::string::npos, out);
  CHECK_MESSAGE(out.find("embed_tokens and lm_head get 1 new rows") != std::string::npos, out);
  CHECK_MESSAGE(out.find("GENERATED SAMPLES") == std::string::npos, out);  // generation_interval 250
  CHECK_MESSAGE(out.find("eval step 4") != std::string::npos, out);
  for (const std::string& line : train_records(straight.out("metrics.jsonl"))) {
    const double loss = number_after(line, "\"loss\":");
    CHECK(std::isfinite(loss));
    CHECK(loss > 0);
  }
}

TEST_CASE("llm_train: a log window's diffusion metrics are checkpointed: a resume inside it logs the same means") {
  Workspace ws("diffusion_window");
  Run a = run_train(ws.config(kDiffusion + "max_steps: 4\nsave_steps: 1\nlogging_steps: 2\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  const std::string again = (ws.dir / "again").string();
  Run b = run_train("--resume " + ws.out(checkpoint_dir_name(1)) + " --output_dir " + again);
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  const std::vector<std::string> straight = records_without_speed(ws.out("metrics.jsonl"));
  CHECK(straight == records_without_speed(again + "/metrics.jsonl"));
  CHECK(straight.size() == 2 + 1);  // steps 2 and 4, and the last evaluation
}

TEST_CASE("llm_train: denoised samples every generation_interval steps, from the evaluation rows, as Axolotl prints") {
  Workspace ws("diffusion_samples");
  const std::string cfg = "plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\n"
                          "diffusion: {generation_interval: 2, num_generation_samples: 2, generation_steps: 3}\n"
                          "max_steps: 3\n";
  Run r = run_train(ws.config(cfg));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find("GENERATED SAMPLES (step 2)") != std::string::npos, r.output);
  CHECK(r.output.find("GENERATED SAMPLES (step 1)") == std::string::npos);
  CHECK(r.output.find("GENERATED SAMPLES (step 3)") == std::string::npos);
  for (const char* part : {"Sample 1:\n\tOriginal (", "Sample 2:\n\tOriginal (", "[MASK]", "\tGenerated: "})
    CHECK_MESSAGE(r.output.find(part) != std::string::npos, part);
  const std::vector<std::string> with_samples = records_without_speed(ws.out("metrics.jsonl"));
  // The same draws on a rerun (temperature 0: argmax), and none when switched off.
  const size_t from = r.output.find("GENERATED SAMPLES"), to = r.output.find("\nstep 2/");
  Run again = run_train(ws.config(cfg));
  CHECK(again.output.substr(again.output.find("GENERATED SAMPLES"), to - from) == r.output.substr(from, to - from));
  Run off = run_train(ws.config("plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\n"
                                "diffusion: {generation_interval: 2, generate_samples: false}\nmax_steps: 3\n"));
  REQUIRE_MESSAGE(off.exit_code == 0, off.output);
  CHECK(off.output.find("GENERATED SAMPLES") == std::string::npos);
  CHECK(records_without_speed(ws.out("metrics.jsonl")) == with_samples);  // generating trains nothing
}

TEST_CASE("llm_train: under ZeRO-3 every rank denoises rank 0's samples (each forward is collective)") {
  Workspace ws("diffusion_samples_zero3");
  Run r = run_train(ws.config("plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\n"
                              "diffusion: {generation_interval: 2, num_generation_samples: 2, generation_steps: 3}\n"
                              "max_steps: 2\nzero_stage: 3\n"),
                    mpirun(2));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const size_t first = r.output.find("GENERATED SAMPLES (step 2)");
  CHECK_MESSAGE(first != std::string::npos, r.output);
  CHECK(r.output.find("GENERATED SAMPLES", first + 1) == std::string::npos);  // printed once, by rank 0
  CHECK(r.output.find("Sample 2:") != std::string::npos);
}

TEST_CASE("llm_train: diffusion with packed rows and a plain token as the mask; the older top-level spelling") {
  Workspace ws("diffusion_packed");
  const std::string cfg = "plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\nmask_token_id: 65\n"
                          "importance_weighting: false\nsample_packing: true\nmax_steps: 2\n";
  Run r = run_train(ws.config(cfg));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find("diffusion: mask token id (id 65), eps 0.001, importance weighting off") != std::string::npos,
                r.output);
  CHECK(r.output.find("new rows") == std::string::npos);
  check_refused_run(ws, "diffusion:\n  eps: 0.1\n", "diffusion: expected plugins: [axolotl.integrations.diffusion.DiffusionPlugin]");
  check_refused_run(ws, kDiffusion + "s2_attention: true\n", "bidirectional");
  check_refused_run(ws, kDiffusion + "  t_eps: 0.1\n", "diffusion.t_eps: expected a map {eps,");
  // An adapter's export must carry the added mask token's row.
  check_refused_run(ws, kDiffusion + "adapter: lora\nlora_target_linear: true\n",
                    "diffusion: expected lora_modules_to_save: [embed_tokens, lm_head] with an adapter");
}
