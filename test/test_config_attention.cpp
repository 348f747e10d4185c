// The attention keys (train/config_attention.cpp): each spelling of the one implementation,
// Axolotl's legacy flags in its priority, S2 on flash and its groups, which attention packs
// documents apart, and SSMax's factor and bias.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/attention_kind.h"
#include "test/config_fixture.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("attention: one implementation, any spelling; Axolotl's legacy flags in its priority") {
  for (const AttentionInfo& info : kAttentionKinds) {
    CAPTURE(info.implementation);
    CHECK(parse(std::string("attn_implementation: ") + info.implementation + "\n").attention ==
          info.kind);
    CHECK(parse(std::string("attention: ") + info.short_name + "\n").attention == info.kind);
    if (info.config_key)
      CHECK(parse(std::string(info.config_key) + ": true\n").attention == info.kind);
  }
  CHECK(parse("").attention == AttentionKind::eager);
  CHECK(parse("attn_implementation: eager\nflash_attention: false\n").attention ==
        AttentionKind::eager);
  CHECK(parse("flash_attention: false\n").attention == AttentionKind::eager);
  CHECK(parse("attn_implementation: flash_attention_2\nflash_attention: true\n").attention ==
        AttentionKind::flash);
  CHECK(parse("xformers_attention: true\n", {{"xformers_attention", "false"}}).attention ==
        AttentionKind::eager);

  // Several legacy flags: Axolotl 0.19's priority (xformers, flex, flash, sdp, eager), said once.
  const TrainConfig both = parse("flash_attention: true\nxformers_attention: true\n");
  CHECK(both.attention == AttentionKind::mem_efficient);
  CHECK(both.adjustments == std::vector<std::string>{
      "xformers_attention and flash_attention are all true: xformers_attention trains, the first in Axolotl's "
      "priority of its legacy attention flags (xformers, flex, flash, sdp, eager); set only one, or attn_implementation"});
  CHECK(parse("flash_attention: true\nsdp_attention: true\neager_attention: true\n").attention == AttentionKind::flash);
  CHECK(parse("flash_attention: true\nflex_attention: true\n").adjustments.empty());  // one kind: nothing to say
  CHECK(error_with("attn_implementation: sdpa\nflash_attention: true\n") ==
        "cfg.yaml:3: attn_implementation: expected one attention implementation, got "
        "flash_attention: true and attn_implementation: sdpa");
  // Axolotl's newer key (its fft-8b-liger-fsdp example: `attention: flash` with sample packing).
  CHECK(parse("attention: flash\nsample_packing: true\nflash_attention: true\n").attention == AttentionKind::flash);
  CHECK(error_with("attention: flex\n") ==
        "cfg.yaml:3: attention: expected one of eager, flash, xformers, s2, sdpa, got 'flex'");
  CHECK(error_with("xformers_attention: true\nattention: flash\n") ==
        "cfg.yaml:4: attention: expected one attention implementation, got "
        "xformers_attention: true and attention: flash");
  // Axolotl 0.19's other exact kernels train with flash; its eager flag is eager.
  for (const char* name : {"flash_attention_3", "flash_attention_4", "flash_attention_torch", "flex_attention",
                           "kernels-community/flash-attn2", "kernels-community/flash-attn3"})
    CHECK(parse(std::string("attn_implementation: ") + name + "\nsample_packing: true\n").attention == AttentionKind::flash);
  CHECK(parse("eager_attention: true\n").attention == AttentionKind::eager);
  CHECK(parse("eager_attention: true\nflash_attention: true\n").attention == AttentionKind::flash);
}

TEST_CASE("s2_attention: rides on flash, alone among the other kernels, without sample_packing; its groups divide the rows") {
  // Axolotl applies s2 through its flash patch, so its LongLoRA configs set both keys.
  CHECK(parse("flash_attention: true\ns2_attention: true\n").attention == AttentionKind::s2);
  CHECK(parse("s2_attention: true\nattn_implementation: flash_attention_2\n").attention == AttentionKind::s2);
  CHECK(error_with("xformers_attention: true\ns2_attention: true\n") ==
        "cfg.yaml:4: s2_attention: expected one attention implementation, got "
        "xformers_attention: true and s2_attention: true");
  CHECK(starts_with(error_with("attn_implementation: eager\ns2_attention: true\n"),
                    "cfg.yaml:3: attn_implementation: expected one attention implementation"));
  CHECK(error_with("s2_attention: true\nsample_packing: true\n") ==
        "cfg.yaml:4: sample_packing: expected false with s2_attention (its groups would span "
        "documents), got true");
  CHECK(starts_with(error_with("sample_packing: true\nattn_implementation: s2\n"),
                    "cfg.yaml:3: sample_packing: expected false with s2_attention"));
  CHECK(starts_with(error_with("s2_attention: true\nsequence_len: 100\ns2_group_size_ratio: 0.3\n"),
                    "cfg.yaml:5: s2_group_size_ratio: expected a ratio whose group size divides"));
  CHECK(parse("s2_attention: true\ns2_group_size_ratio: 0.5\n").s2_group_size_ratio == 0.5);
  // S2 evaluates in groups too: test_datasets' rows of a longer eval_sequence_len must divide into theirs.
  const std::string s2_test = "s2_attention: true\nsequence_len: 20\nval_set_size: 0\n"
                              "test_datasets: [{path: " + scratch().data + ", type: completion}]\n";
  CHECK(error_with(s2_test + "eval_sequence_len: 22\n") ==
        "cfg.yaml:7: eval_sequence_len: expected a length whose S2 group (s2_group_size_ratio 0.25 of it) divides it, "
        "got 22 (group size 5)");
  CHECK(parse(s2_test + "eval_sequence_len: 24\n").data.eval_sequence_len == 24);
  CHECK(parse(s2_test + "eval_sequence_len: 16\n").data.eval_sequence_len == 16);  // rows stay sequence_len's
}

TEST_CASE("sample_packing: which attention packs, and Axolotl's packing without an attention key") {
  // No attention key: Axolotl packs anyway, its examples attending across each other (it warns).
  const TrainConfig across = parse("sample_packing: true\n");
  CHECK(across.packing_attends_across_documents());
  CHECK(across.attention_kernel() == AttentionKind::flash);
  CHECK(across.data.multipack_real_batches);
  CHECK(across.adjustments.size() == 1);
  CHECK(!parse("sample_packing: true\nflash_attention: true\n").packing_attends_across_documents());
  CHECK(parse("sample_packing: true\nflash_attention: true\n").data.sample_packing);
  // Eager asked for by name packs as Axolotl 0.19 packs it, through a block-diagonal mask over
  // masked batches of sequence_len: flash's attention over each document.
  for (const char* eager : {"attn_implementation: eager\n", "eager_attention: true\n"}) {
    const TrainConfig packed = parse(std::string(eager) + "sample_packing: true\n");
    CHECK(packed.attention == AttentionKind::flash);
    CHECK(packed.data.multipack_real_batches);
  }
}

TEST_CASE("flex_attention: the same exact attention with document masks, trained with flash") {
  const TrainConfig c = parse("flex_attention: true\nsample_packing: true\n");
  CHECK(c.attention == AttentionKind::flash);
  CHECK(c.data.sample_packing);
  CHECK(parse("flex_attention: true\nflash_attention: true\n").attention == AttentionKind::flash);
  CHECK(parse("flex_attention: true\nxformers_attention: true\n").attention == AttentionKind::mem_efficient);
}

TEST_CASE("sample_packing with sdp_attention: Axolotl masks the documents (sdpa's block mask), so flash trains it") {
  CHECK(parse("sdp_attention: true\nsample_packing: true\n").attention == AttentionKind::flash);
  CHECK(parse("sdp_attention: true\n").attention == AttentionKind::cudnn);
  CHECK(!parse("sdp_attention: true\nsample_packing: true\n").packing_attends_across_documents());
  CHECK(!parse("eager_attention: true\nsample_packing: true\n").packing_attends_across_documents());
  CHECK(parse("sample_packing: true\n").packing_attends_across_documents());  // no key: across the examples
}

TEST_CASE("scaling_softmax (SSMax): Axolotl's factor and bias, their defaults for 0 and null, any attention") {
  const TrainConfig off = parse("");
  CHECK_FALSE(off.scaling_softmax);
  const TrainConfig on = parse("scaling_softmax: true\nflash_attention: true\n");
  CHECK(on.scaling_softmax);
  CHECK(on.scaling_softmax_factor == 0.43f);
  CHECK(on.scaling_softmax_bias == 0.0f);
  // Axolotl reads them as `scaling_softmax_factor or 0.43`: 0 (and null, unset) is the default.
  const TrainConfig set = parse("scaling_softmax: true\nscaling_softmax_factor: 0.6\nscaling_softmax_bias: -0.25\n");
  CHECK(set.scaling_softmax_factor == 0.6f);
  CHECK(set.scaling_softmax_bias == -0.25f);
  CHECK(parse("scaling_softmax: true\nscaling_softmax_factor: 0\n").scaling_softmax_factor == 0.43f);
  CHECK(parse("scaling_softmax: true\nscaling_softmax_factor: null\n").scaling_softmax_factor == 0.43f);
  CHECK(parse("scaling_softmax: true\ns2_attention: true\n").scaling_softmax);
  CHECK(starts_with(error_with("scaling_softmax: true\nscaling_softmax_factor: 1e39\n"),
                    "cfg.yaml:4: scaling_softmax_factor: expected a number in [-3.40282e+38, 3.40282e+38], got 1e39"));
  CHECK(starts_with(error_with("scaling_softmax: yes please\n"), "cfg.yaml:3: scaling_softmax: expected true or false"));
}
