// Axolotl's fix_untrained_tokens (train/untrained_tokens.h) against Axolotl's own function, run by
// tools/make_untrained_tokens_reference.py on small matrices with untrained rows of every kind it
// looks for: which rows it rewrites and their values; and its refusal when they cannot train.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test/test_files.h"
#include "train/untrained_tokens.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json reference() {
  const std::string path = std::string(LLM_UNTRAINED_TOKENS_REFERENCE_DIR) + "/cases.json";
  REQUIRE_MESSAGE(fs::exists(path), path << " is missing: run tools/make_untrained_tokens_reference.py");
  return json::parse(read_file(path));
}

}  // namespace

TEST_CASE("fix_untrained_tokens: Axolotl's rows, their means and scales (untied and tied)") {
  const json r = reference();
  const int64_t vocab = r.at("vocab"), hidden = r.at("hidden"), pad = r.at("pad");
  for (const json& c : r.at("cases")) {
    CAPTURE(c.at("tied").get<bool>());
    const std::vector<float> embed = c.at("embed"), head = c.at("head");
    const std::vector<std::vector<int32_t>> examples = c.at("examples");
    const UntrainedTokens fix = find_untrained_tokens(embed.data(), c.at("tied") ? embed.data() : head.data(), vocab,
                                                      hidden, pad, c.at("extra"), {}, examples, true);
    REQUIRE(fix.ids == c.at("ids").get<std::vector<int64_t>>());
    for (size_t i = 0; i < fix.ids.size(); i++)
      for (int64_t k = 0; k < hidden; k++) {
        const double embed_row = c.at("embed_rows")[i][k], head_row = c.at("head_rows")[i][k];
        CHECK(fix.embed_mean[k] * fix.scales[i] == doctest::Approx(embed_row).epsilon(1e-5));
        CHECK(fix.head_mean[k] * fix.scales[i] == doctest::Approx(head_row).epsilon(1e-5));
      }
    // Frozen embeddings: the ids the data's edges use, refused as Axolotl refuses them.
    const std::string refused = error_of([&] {
      find_untrained_tokens(embed.data(), head.data(), vocab, hidden, pad, c.at("extra"), {}, examples, false);
    });
    CAPTURE(refused);
    CHECK(refused.find("fix_untrained_tokens: the training data uses untrained tokens [31, 33, 35, ") == 0);
    // Untrained rows no example uses (nor the chat template) change nothing.
    const std::vector<std::vector<int32_t>> plain = {{1, 2, 3}, {4, 5}};
    CHECK(find_untrained_tokens(embed.data(), head.data(), vocab, hidden, pad, {}, {}, plain, false).ids.empty());
    // A used row only the chat template shows at the edges still opens the check.
    std::vector<std::vector<int32_t>> middle(600, std::vector<int32_t>{1, 2});
    middle[300] = {33};
    CHECK(find_untrained_tokens(embed.data(), head.data(), vocab, hidden, pad, {}, {}, middle, true).ids.empty());
    CHECK(find_untrained_tokens(embed.data(), head.data(), vocab, hidden, pad, {}, {33}, middle, true).ids ==
          std::vector<int64_t>{33});
  }
}

TEST_CASE("apply_untrained_tokens: each listed row becomes its mean x scale, in both matrices") {
  Tensor embed = Tensor::zeros({3, 2}, DType::f32), head = Tensor::full({3, 2}, 1.0f, DType::f32);
  UntrainedTokens fix{{1}, {0.5}, {2.0, 4.0}, {6.0, 8.0}};
  apply_untrained_tokens(fix, embed, head, DType::f32);
  CHECK(embed.to_floats() == std::vector<float>{0, 0, 1, 2, 0, 0});
  CHECK(head.to_floats() == std::vector<float>{1, 1, 3, 4, 1, 1});
  // A bf16 run: the values rounded to bf16 (1 + 2^-9 to 1), as Axolotl casts them to its weights'.
  const UntrainedTokens fine{{2}, {1.0}, {1.0 + 1.0 / 512, 3.0}, {0.1, 2.0}};
  apply_untrained_tokens(fine, embed, head, DType::bf16);
  CHECK(embed.to_floats() == std::vector<float>{0, 0, 1, 2, 1, 3});
  CHECK(head.to_floats()[4] == bf16_to_f32(f32_to_bf16(0.1f)));
  CHECK(head.to_floats()[4] != 0.1f);
  apply_untrained_tokens(fine, embed, head, DType::f32);
  CHECK(embed.to_floats()[4] == 1.0f + 1.0f / 512);
}
