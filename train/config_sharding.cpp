// defines: distributed_rows (the keys of several ranks: local_rank, Ray's, the all-reduce bucket, and
// how a config asks for ZeRO: our zero_stage, a DeepSpeed json, or Axolotl's FSDP keys mapped onto
// the same stages)
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "train/config_field_builders.h"
#include "train/config_fields.h"
#include "io/json_text.h"
#include "io/special_file.h"

namespace llm {
namespace {

constexpr int64_t kMaxLocalRank = 65535;

// A DeepSpeed JSON config as Axolotl's deepspeed_configs/zero*.json: zero_optimization.stage sets
// zero_stage, and its offload_param or offload_optimizer to a device (cpu, nvme) asks for what
// FSDP's offload_params does here (the start-up says what that offloads); the rest is DeepSpeed's
// own tuning, or "auto".
void read_deepspeed(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string path = ctx.beside_config(read_string(n, w));
  if (std::optional<std::string> kind = special_file_kind(path)) fail(w, "a readable DeepSpeed JSON config", "'" + path + "', " + *kind);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(w, "a readable DeepSpeed JSON config", "'" + path + "', a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(w, "a readable DeepSpeed JSON config", "'" + path + "'");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const nlohmann::json json = parse_json_or_discarded(text);
  if (json.is_discarded() || !json.is_object())
    fail(w, "a DeepSpeed JSON config (a JSON object)", "'" + path + "', which is not one");
  // value() on a zero_optimization that is no object ("auto", 3) would throw type_error.
  const nlohmann::json zero = json.value("zero_optimization", nlohmann::json());
  const nlohmann::json stage = zero.is_object() ? zero.value("stage", nlohmann::json()) : nlohmann::json();
  if (!stage.is_number_integer() || stage.get<int64_t>() < 0 || stage.get<int64_t>() > 3)
    fail(w, "a DeepSpeed config whose zero_optimization.stage is 0, 1, 2 or 3", "'" + path + "' without one");
  ctx.config.deepspeed = path;
  ctx.config.deepspeed_stage = ctx.config.zero_stage = stage.get<int64_t>();
  for (const char* key : {"offload_param", "offload_optimizer"}) {
    const nlohmann::json offload = zero.value(key, nlohmann::json());
    if (offload.is_object() && offload.contains("device") && offload["device"].is_string() &&
        offload["device"].get<std::string>() != "none")
      ctx.config.offload_params = true;
  }
}

// Axolotl's `fsdp: [full_shard, auto_wrap]` (a list, or one space-separated string): FSDP's
// FULL_SHARD is ZeRO-3 (weights, gradients and optimizer state sharded), SHARD_GRAD_OP ZeRO-2.
// auto_wrap wraps each decoder layer, which are our units anyway.
void read_fsdp(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  std::vector<std::string> words;
  for (const std::string& item : read_string_list(n, w)) {
    std::istringstream split(item);
    for (std::string word; split >> word;) words.push_back(word);
  }
  for (const std::string& word : words) {
    if (word == "full_shard" || word == "shard_grad_op")
      ctx.config.fsdp_stage = ctx.config.zero_stage = word == "full_shard" ? 3 : 2;
    else if (word == "offload")
      ctx.config.offload_params = true;  // FSDP's CPUOffload(offload_params=True)
    else if (word != "auto_wrap")
      fail(w, "full_shard, shard_grad_op, auto_wrap or offload", "'" + word + "'");
  }
}

// Axolotl's fsdp_config (its keys with or without the fsdp_ prefix, FSDP 1 and 2): the sharding
// strategy sets the stage; settings that match what we do are checked; the rest is warned about
// once each, as unused.
void read_fsdp_config(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map of FSDP settings", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    const std::string name = key.rfind("fsdp_", 0) == 0 ? key.substr(5) : key;
    if (name == "sharding_strategy") {
      const std::string s = read_choice(v, wk, {"FULL_SHARD", "SHARD_GRAD_OP", "1", "2"});
      ctx.config.fsdp_stage = ctx.config.zero_stage = s == "FULL_SHARD" || s == "1" ? 3 : 2;
    } else if (name == "reshard_after_forward") {  // FSDP 2's spelling of the same choice
      ctx.config.fsdp_stage = ctx.config.zero_stage = read_bool(v, wk) ? 3 : 2;
    } else if (name == "version") {
      read_int(v, wk, 1, 2);  // FSDP 1 and 2 shard alike here
    } else if (name == "offload_params") {
      ctx.config.offload_params = read_bool(v, wk);
    } else if (name == "forward_prefetch") {
      ctx.config.forward_prefetch = read_bool(v, wk);
    } else if (name == "backward_prefetch") {
      // BACKWARD_POST would start it after the unit's gradients rather than before: a scheduling
      // choice, not a result; both prefetch here as BACKWARD_PRE does.
      ctx.config.backward_prefetch = read_choice(v, wk, {"BACKWARD_PRE", "BACKWARD_POST", "NO_PREFETCH"}) != "NO_PREFETCH";
    } else if (name == "cpu_ram_efficient_loading" && read_bool(v, wk)) {
      // What ZeRO-3 does anyway: trained weights and an adapter run's frozen base are drawn or
      // read one at a time, each rank keeping only its slices (engine/sharded_weights.h,
      // engine/frozen_shards.h).
      // false is not offered (it would only hold more memory), so it is warned about as unused.
    } else if (name == "activation_checkpointing") {
      if (read_bool(v, wk)) ctx.config.gradient_checkpointing = true;  // recompute every block
    } else if ((name == "auto_wrap_policy" && v.IsScalar() && v.Scalar() == "TRANSFORMER_BASED_WRAP") ||
               (name == "transformer_layer_cls_to_wrap" && v.IsScalar() && v.Scalar() == "LlamaDecoderLayer")) {
      // What ZeRO-3 does here anyway: one unit per decoder layer (plus the embeddings and head).
    } else {
      ctx.unknown.insert(wk.key);
    }
  });
}

void read_zero_stage(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  ctx.config.zero_stage = read_int(n, w, 0, 3);
}

}  // namespace

std::vector<ConfigField> distributed_rows(const char* section) {
  using namespace field_builders;
  return {
      integer("local_rank", section, MEMBER(local_rank), 0, kMaxLocalRank,
              "GPU of this rank; unset: from MPI"),
      flag("use_ray", section, MEMBER(use_ray),
           "Axolotl's Ray launch; here mpirun -np starts the ranks, and with use_ray their count must be "
           "ray_num_workers"),
      integer("ray_num_workers", section, MEMBER(ray_num_workers), 1, kMaxBatch,
              "with use_ray: the data-parallel ranks the run expects (each takes its own micro-batches)"),
      number("ddp_bucket_cap_mb", section, MEMBER(ddp_bucket_cap_mb), kPositive,
             "gradient bucket size for the all-reduce"),
      {"deepspeed", section, "a DeepSpeed JSON config file",
       "its zero_optimization.stage sets zero_stage (0 to 3)", read_deepspeed,
       [](const TrainConfig& c) { return yaml_string(c.deepspeed); }},
      // Written as the zero_stage they set (and gradient_checkpointing), not themselves; only
      // offload_params and the prefetch switches (when off) are written as themselves.
      {"fsdp", section, "a list of full_shard, shard_grad_op, auto_wrap, offload",
       "Axolotl's FSDP, on with it or fsdp_config: zero_stage 3 (FULL_SHARD, accelerate's default) unless "
       "shard_grad_op (2); offload: fsdp_offload_params", read_fsdp, {}},
      {"fsdp_config", section, "a map of FSDP settings",
       "fsdp_sharding_strategy / reshard_after_forward set zero_stage; fsdp_offload_params: an adapter's "
       "frozen ZeRO-3 slices in host memory; fsdp_forward_prefetch (bool), fsdp_backward_prefetch "
       "(BACKWARD_PRE, BACKWARD_POST, NO_PREFETCH): ZeRO-3's next all-gather during this unit's compute, "
       "on unless off; unused keys are warned",
       read_fsdp_config,
       [](const TrainConfig& c) {
         std::vector<std::string> set;
         if (c.offload_params) set.push_back("fsdp_offload_params: true");
         if (!c.forward_prefetch) set.push_back("fsdp_forward_prefetch: false");
         if (!c.backward_prefetch) set.push_back("fsdp_backward_prefetch: NO_PREFETCH");
         std::string map;
         for (const std::string& item : set) map += (map.empty() ? "{" : ", ") + item;
         return map.empty() ? map : map + "}";
       }},
      {"zero_stage", section, "0, 1, 2 or 3",
       "1: shard the AdamW state and f32 master weights across ranks; 2: the gradients too; 3: the weights too",
       read_zero_stage, [](const TrainConfig& c) { return std::to_string(c.zero_stage); }},
  };
}

}  // namespace llm
