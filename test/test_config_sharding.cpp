// Tests for train/config_sharding: how a config asks for ZeRO (zero_stage, a DeepSpeed json,
// Axolotl's fsdp and fsdp_config spellings), each mapped onto the same stages, and what they
// leave unused.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test/config_fixture.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("deepspeed: a ZeRO json's zero_optimization.stage sets zero_stage") {
  const Scratch& s = scratch();
  const std::string zero2 = s.write("zero2.json", R"({"zero_optimization": {"stage": 2, "overlap_comm": true},
                                                      "bf16": {"enabled": "auto"}})");
  const std::string zero3 = s.write("zero3.json", R"({"zero_optimization": {"stage": 3}})");
  const std::string none = s.write("none.json", R"({"bf16": {"enabled": true}})");
  CHECK(parse("deepspeed: " + zero2 + "\n").zero_stage == 2);
  CHECK(parse("deepspeed: " + zero2 + "\nzero_stage: 2\n").zero_stage == 2);  // as a saved config
  CHECK(parse("deepspeed: " + zero3 + "\n").zero_stage == 3);
  CHECK(!parse("deepspeed: " + zero3 + "\n").offload_params);
  // ZeRO-Offload (Axolotl's zero3_bf16_cpuoffload_*.json): what FSDP's offload_params asks for.
  for (const char* offload : {"offload_param", "offload_optimizer"}) {
    CAPTURE(offload);
    const std::string cpu = s.write(std::string(offload) + ".json", std::string(R"({"zero_optimization": {"stage": 3, ")") +
                                                                        offload + R"(": {"device": "cpu", "pin_memory": true}}})");
    CHECK(parse("deepspeed: " + cpu + "\n").offload_params);
  }
  const std::string off = s.write("off.json", R"({"zero_optimization": {"stage": 3, "offload_param": {"device": "none"}}})");
  CHECK(!parse("deepspeed: " + off + "\n").offload_params);
  CHECK(error_with("deepspeed: " + none + "\n") ==
        "cfg.yaml:3: deepspeed: expected a DeepSpeed config whose zero_optimization.stage is 0, 1, 2 "
        "or 3, got '" + none + "' without one");
  // Not an object where DeepSpeed has one: refused in one line, not nlohmann's type_error.
  const std::string scalar = s.write("scalar.json", R"({"zero_optimization": "auto"})");
  CHECK(error_with("deepspeed: " + scalar + "\n") ==
        "cfg.yaml:3: deepspeed: expected a DeepSpeed config whose zero_optimization.stage is 0, 1, 2 "
        "or 3, got '" + scalar + "' without one");
  // A NUL byte would end nlohmann's input early: the valid head alone must not pass.
  const std::string nul = s.write("nul.json", std::string(R"({"zero_optimization": {"stage": 3}})") + '\0' + "junk");
  CHECK(error_with("deepspeed: " + nul + "\n") ==
        "cfg.yaml:3: deepspeed: expected a DeepSpeed JSON config (a JSON object), got '" + nul + "', which is not one");
  // A directory where the file should be: one line naming the key (it was an uncaught stream error).
  CHECK(error_with("deepspeed: " + (s.dir / "sub").string() + "\n") ==
        "cfg.yaml:3: deepspeed: expected a readable DeepSpeed JSON config, got '" + (s.dir / "sub").string() + "', a directory");
  CHECK(error_with("deepspeed: " + zero2 + "\nzero_stage: 1\n") ==
        "cfg.yaml:4: zero_stage: expected the stage of deepspeed's config, 2, or no zero_stage, got 1");
}

TEST_CASE("fsdp and fsdp_config (Axolotl's spellings) map onto zero_stage; unused keys are warned") {
  CHECK(parse("fsdp: [full_shard, auto_wrap]\n").zero_stage == 3);
  CHECK(parse("fsdp: full_shard auto_wrap\n").zero_stage == 3);
  CHECK(parse("fsdp: [shard_grad_op]\n").zero_stage == 2);
  // FSDP on without a strategy: accelerate's FULL_SHARD (fft-4b-fsdp-tp.yaml's `fsdp: [auto_wrap]`).
  CHECK(parse("fsdp: [auto_wrap]\n").zero_stage == 3);
  CHECK(parse("fsdp_config:\n  fsdp_version: 2\n  auto_wrap_policy: TRANSFORMER_BASED_WRAP\n").zero_stage == 3);
  CHECK(parse("fsdp: []\n").zero_stage == 0);
  CHECK(parse("fsdp: [auto_wrap]\nzero_stage: 1\n").zero_stage == 1);  // a saved config's stage
  const TrainConfig c = parse(
      "fsdp: [full_shard, auto_wrap]\nfsdp_config:\n  fsdp_version: 2\n  fsdp_offload_params: false\n"
      "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n"
      "  fsdp_state_dict_type: FULL_STATE_DICT\n  fsdp_activation_checkpointing: true\n  fsdp_sync_module_states: true\n");
  CHECK(c.zero_stage == 3);
  CHECK(c.gradient_checkpointing);
  CHECK(c.unknown_keys ==
        std::vector<std::string>{"fsdp_config.fsdp_state_dict_type", "fsdp_config.fsdp_sync_module_states"});
  CHECK(parse("fsdp: [full_shard]\nfsdp_config:\n  fsdp_sharding_strategy: SHARD_GRAD_OP\n").zero_stage == 2);
  CHECK(parse("fsdp: [full_shard]\nfsdp_config:\n  reshard_after_forward: false\n").zero_stage == 2);
  CHECK(parse("fsdp: [full_shard]\nzero_stage: 3\n").zero_stage == 3);  // as a saved config
  CHECK(!parse("fsdp: [full_shard, auto_wrap]\n").offload_params);
  CHECK(parse("fsdp: [full_shard, offload]\n").offload_params);  // FSDP's CPUOffload
  CHECK(parse("fsdp: [full_shard]\nfsdp_config:\n  fsdp_offload_params: true\n").offload_params);
  CHECK(error_with("fsdp: [hybrid_shard]\n") ==
        "cfg.yaml:3: fsdp: expected full_shard, shard_grad_op, auto_wrap or offload, got 'hybrid_shard'");
  CHECK(error_with("fsdp: [full_shard]\nzero_stage: 2\n") ==
        "cfg.yaml:4: zero_stage: expected the stage fsdp asks for, 3, or no zero_stage, got 2");
  // ZeRO-3's prefetch: on unless turned off; BACKWARD_POST prefetches as BACKWARD_PRE does.
  CHECK(parse("fsdp: [full_shard]\n").forward_prefetch);
  CHECK(parse("fsdp: [full_shard]\n").backward_prefetch);
  CHECK(!parse("fsdp: [full_shard]\nfsdp_config:\n  fsdp_forward_prefetch: false\n").forward_prefetch);
  CHECK(!parse("fsdp: [full_shard]\nfsdp_config:\n  fsdp_backward_prefetch: NO_PREFETCH\n").backward_prefetch);
  CHECK(parse("fsdp: [full_shard]\nfsdp_config:\n  backward_prefetch: BACKWARD_POST\n").backward_prefetch);
  CHECK(error_with("fsdp: [full_shard]\nfsdp_config:\n  fsdp_backward_prefetch: SOMETIMES\n").find(
            "fsdp_backward_prefetch") != std::string::npos);
  // ZeRO-3 with an adapter shards the frozen base (engine/frozen_shards.h).
  CHECK(parse("zero_stage: 3\nadapter: lora\nlora_target_linear: true\n").zero_stage == 3);
}
