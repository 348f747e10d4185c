// The memory planner against the CPU allocator's measured peak of real training steps (f32 and
// 8-bit AdamW, eager and flash attention, with and without recompute), and its arithmetic for
// Llama-3-8B's layout at ZeRO-1 and 3 (ZeRO-3's measured peak: test_distributed).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/adafactor.h"
#include "engine/came.h"
#include "engine/galore.h"
#include "engine/lion.h"
#include "engine/lomo.h"
#include "engine/schedule_free.h"
#include "engine/torchao_adamw.h"
#include "model/llama.h"
#include "model/lora.h"
#include "test/test_util.h"
#include "train/memory_plan.h"
#include "train/optimizer_groups.h"

using namespace llm;
using namespace llm::testing;

namespace {

// Every parameter of `model` by name, in its order (APOLLO's first seeds are positions in it).
std::vector<std::string> parameter_names(LlamaModel& model) {
  std::vector<std::string> names;
  for (const ParamRef& p : model.parameters()) names.push_back(p.name);
  return names;
}

// Peak allocator bytes of the second of two steps (forward, backward, AdamW), as the trainer
// runs them at world size 1: the first step fills the cache and creates the optimizer state.
// With `lora`, an adapter run as the trainer sets it up (quantised when in.quant_linears).
// With `eval_rows`, the peak of an evaluation forward of that many rows (no gradients) after the
// two steps instead.
double measured_peak(const MemoryPlanInput& in, const LoraConfig* lora = nullptr, int64_t eval_rows = 0,
                     const QatScheme& qat = {}, const TrainConfig* updates_in_backward = nullptr) {
  const int64_t B = in.micro_batch_size, S = in.sequence_len;
  LlamaModel model(in.model, Device::cpu(), 1);
  if (lora) model.add_lora(*lora, 1);
  if (in.quant_linears) model.quantize_frozen_linears(in.quant_format, in.nf4_double_quant);
  if (in.bf16_weights) model.store_weights_in_bf16();
  std::vector<OptimParam> params;
  for (auto& p : model.trainable_parameters())
    params.push_back({p.name, p.tensor, !LlamaModel::is_norm_weight(p.name), 1.0f, LlamaModel::is_embedding_weight(p.name)});
  const AdamWState state = in.optimizer_8bit ? AdamWState::blockwise_8bit : AdamWState::f32;
  std::unique_ptr<Optimizer> opt;
  if (updates_in_backward) {  // LOMO, AdaLomo, or GaLore (layer-wise or not, by its optimizer's name)
    const TrainConfig& c = *updates_in_backward;
    if (c.optimizer == "lomo") opt = std::make_unique<Lomo>(params);
    else if (c.optimizer == "adalomo") opt = std::make_unique<Adafactor>(params, AdamWConfig{}, /*adalomo=*/true);
    else if (c.optimizer_apollo()) opt = make_apollo(c, params, parameter_names(model));
    else opt = make_galore(c, params);
  } else if (in.optimizer_muon) {
    TrainConfig c;
    c.optimizer = "muon";
    opt = make_muon(c, params);
  } else if (in.optimizer_came) {
    opt = std::make_unique<Came>(params, AdamWConfig{}, CameConfig{});
  } else if (in.optimizer_torchao) {
    TorchaoAdamWConfig torchao;
    torchao.codes = *in.optimizer_torchao;
    opt = std::make_unique<TorchaoAdamW>(params, torchao);
  } else if (in.optimizer_schedule_free) {
    opt = std::make_unique<ScheduleFree>(params, ScheduleFreeConfig{});
  } else if (in.optimizer_moments == 1) {
    opt = std::make_unique<Lion>(params, AdamWConfig{}, state);
  } else {
    opt = std::make_unique<AdamW>(params, AdamWConfig{}, state);
  }
  Tensor ids = randint({B, S}, 0, int(in.model.vocab_size)), targets = randint({B * S}, 0, int(in.model.vocab_size));
  std::vector<int32_t> pos(B * S);
  for (int64_t i = 0; i < B * S; i++) pos[i] = int32_t(i % S);
  Tensor positions = Tensor::from_ints(pos, {B, S});
  ForwardOptions fwd;
  fwd.attention = in.attention;
  fwd.recompute_every_n_layers = in.recompute_every_n_layers;
  fwd.qat = qat;
  CachingAllocator& alloc = backend(Device::cpu()).allocator();
  for (int step = 0; step < 2; step++) {
    for (auto& p : params) p.param->zero_grad();
    if (step == 1) alloc.reset_peak();
    Tensor loss = model.loss(ids, targets, positions, fwd);
    LeafReadyHookScope layerwise(opt->pass_updates(1e-3f));
    backward(loss);
    opt->step(1e-3f, 1.0);
  }
  if (eval_rows > 0) {
    for (auto& p : params) p.param->zero_grad();
    NoGradGuard no_grad;
    Tensor eval_ids = randint({eval_rows, S}, 0, int(in.model.vocab_size));
    Tensor eval_targets = randint({eval_rows * S}, 0, int(in.model.vocab_size));
    std::vector<int32_t> eval_pos(eval_rows * S);
    for (int64_t i = 0; i < eval_rows * S; i++) eval_pos[i] = int32_t(i % S);
    // The evaluation's own bytes: a cache warmed by the steps' shapes would serve some of its
    // requests from larger blocks (4% more at width 128), which no plan can know.
    alloc.empty_cache();
    alloc.reset_peak();
    model.loss(eval_ids, eval_targets, Tensor::from_ints(eval_pos, {eval_rows, S}), fwd).item();
  }
  return double(alloc.stats().peak_bytes);
}

// A 2-layer model of `width` and `mlp` on micro-batches of `rows` x `seq` tokens.
MemoryPlanInput small_run(int64_t width, int64_t mlp, int64_t seq, int64_t rows) {
  MemoryPlanInput in;
  in.model.hidden_size = width;
  in.model.intermediate_size = mlp;
  in.model.num_hidden_layers = 2;
  in.sequence_len = seq;
  in.micro_batch_size = rows;
  return in;
}

}  // namespace

TEST_CASE("the planned peak is within 5% of the allocator's measured peak") {
  MemoryPlanInput in = small_run(64, 192, 128, 2);
  for (AttentionKind attention : {AttentionKind::eager, AttentionKind::flash})
    for (int64_t recompute : {0, 1})
      for (const std::string state :  // bfloat16: the weights too
           {"f32", "8-bit", "bfloat16", "lion", "lion 8-bit", "muon", "came", "schedule-free", "torchao 8-bit",
            "torchao 4-bit", "torchao fp8"}) {
        in.attention = attention;
        in.recompute_every_n_layers = recompute;
        in.optimizer_8bit = state == "8-bit" || state == "lion 8-bit" || state == "torchao 8-bit";
        in.optimizer_torchao = state == "torchao 8-bit"   ? std::optional(TorchaoCodes::dynamic_8bit)
                               : state == "torchao 4-bit" ? std::optional(TorchaoCodes::dynamic_4bit)
                               : state == "torchao fp8"   ? std::optional(TorchaoCodes::fp8)
                                                          : std::nullopt;
        in.bf16_weights = state == "bfloat16";
        in.optimizer_moments = state.rfind("lion", 0) == 0 ? 1 : 2;
        in.optimizer_muon = state == "muon";
        in.optimizer_factored = in.optimizer_came = state == "came";
        in.optimizer_schedule_free = state == "schedule-free";
        const double planned = plan_memory(in).peak_bytes, measured = measured_peak(in);
        CAPTURE(attention_info(attention).label);
        CAPTURE(recompute);
        CAPTURE(state);
        CAPTURE(planned);
        CAPTURE(measured);
        CHECK(std::fabs(planned - measured) <= 0.05 * measured);
      }
}

// GaLore's, APOLLO's and Q-GaLore's state counted tensor by tensor (low_rank_state_bytes, the
// plan's) is the optimizer's own: low-rank moments (8-bit from 4096 elements) or Adafactor's
// means, the bases (a random one of rank 200, over the matrices' sides; Q-GaLore's 4-bit codes,
// their scales and zero points, its top singular vectors), APOLLO's limiter norms, the rest whole.
TEST_CASE("galore_*, apollo_adamw, q_galore_adamw8bit: the planned optimizer state is the optimizer's, byte for byte") {
  for (const char* optimizer : {"galore_adamw", "galore_adamw_8bit", "galore_adafactor", "apollo_adamw", "q_galore_adamw8bit"})
    for (const bool tied : {false, true})
      for (const bool all_linear : {false, true}) {
        CAPTURE(optimizer);
        CAPTURE(tied);
        CAPTURE(all_linear);
        TrainConfig c;
        c.model = small_run(64, 192, 16, 1).model;
        c.model.vocab_size = 300;
        c.model.tie_word_embeddings = tied;
        c.optimizer = optimizer;
        if (c.optimizer_qgalore() && all_linear) continue;  // Axolotl's Q-GaLore takes a list
        c.qgalore.rank = 24;
        c.qgalore.proj_group_size = 64;
        c.optim_target_all_linear = all_linear;
        if (!all_linear) c.optim_target_modules = {"attn", "down_proj"};
        c.optim_args = c.optimizer_apollo()    ? std::map<std::string, double>{{"rank", 200}}
                       : c.optimizer_qgalore() ? std::map<std::string, double>{}
                                               : std::map<std::string, double>{{"rank", 24}, {"proj_type", 1}};
        LlamaModel model(c.model, Device::cpu(), 1);
        std::vector<OptimParam> params;
        for (auto& p : model.trainable_parameters()) params.push_back({p.name, p.tensor});
        const auto optimizer_built =
            c.optimizer_apollo() ? make_apollo(c, params, parameter_names(model)) : make_galore(c, params);
        CHECK(static_cast<double>(optimizer_built->state_bytes()) == low_rank_state_bytes(c));
      }
}

// Layer-wise GaLore and APOLLO, LOMO and AdaLomo drop each gradient once its update is made: the plan's one gradient
// at a time (tied: the embedding's held through backward) against the measured peak, and the
// bytes layer-wise GaLore saves against the same run updating after backward (measured: 44% of
// every gradient's tied, 55% untied).
TEST_CASE("galore_*_layerwise, apollo_adamw_layerwise, lomo, adalomo: the planned peak within 5% of the measured one, every gradient's bytes below whole") {
  for (const bool tied : {false, true})
    for (const int64_t recompute : {0, 1}) {
      CAPTURE(tied);
      CAPTURE(recompute);
      MemoryPlanInput in = small_run(128, 384, 32, 1);
      in.model.vocab_size = 300;
      in.model.tie_word_embeddings = tied;
      in.recompute_every_n_layers = recompute;
      TrainConfig c;
      c.model = in.model;
      c.optimizer = "galore_adamw_layerwise";
      c.optim_target_all_linear = true;
      c.optim_args = {{"rank", 16}};
      in.optimizer_state_bytes = low_rank_state_bytes(c);
      in.layerwise_updates = true;
      const double planned = plan_memory(in).peak_bytes, measured = measured_peak(in, nullptr, 0, {}, &c);
      CAPTURE(planned);
      CAPTURE(measured);
      CHECK(std::fabs(planned - measured) <= 0.05 * measured);
      TrainConfig apollo = c;
      apollo.optimizer = "apollo_adamw_layerwise";
      MemoryPlanInput apollo_in = in;
      apollo_in.optimizer_state_bytes = low_rank_state_bytes(apollo);
      apollo_in.optimizer_update_scratch = low_rank_update_scratch_bytes(apollo);
      const double apollo_planned = plan_memory(apollo_in).peak_bytes,
                   apollo_measured = measured_peak(apollo_in, nullptr, 0, {}, &apollo);
      CAPTURE(apollo_planned);
      CAPTURE(apollo_measured);
      CHECK(std::fabs(apollo_planned - apollo_measured) <= 0.05 * apollo_measured);
      // LOMO: no state at all; AdaLomo: Adafactor's factored means; the same gradients one at a time.
      for (const char* name : {"lomo", "adalomo"}) {
        TrainConfig lomo = c;
        lomo.optimizer = name;
        MemoryPlanInput sgd = in;
        sgd.optimizer_state_bytes = 0;
        sgd.optimizer_moments = 0;
        sgd.optimizer_factored = lomo.optimizer == "adalomo";
        const double lomo_planned = plan_memory(sgd).peak_bytes, lomo_measured = measured_peak(sgd, nullptr, 0, {}, &lomo);
        CAPTURE(name);
        CAPTURE(lomo_planned);
        CAPTURE(lomo_measured);
        CHECK(std::fabs(lomo_planned - lomo_measured) <= 0.05 * lomo_measured);
      }
      c.optimizer = "galore_adamw";
      const double whole = measured_peak(in, nullptr, 0, {}, &c);
      const double gradients = 4.0 * static_cast<double>(in.model.num_parameters());
      CAPTURE(whole);
      MESSAGE("tied " << tied << ", recompute " << recompute << ": planned " << planned << ", measured " << measured
                      << ", updating after backward " << whole << " of which gradients " << gradients);
      CHECK(whole - measured >= 0.4 * gradients);
    }
}

// QAT's schemes keep fake-quantised copies: of the inputs (int8 or e4m3 rows beside them, mxfp4's
// in their place) and of the weights (int4 after e4m3 rows: both), with and without recompute.
TEST_CASE("qat: the planned peak of each scheme is within 5% of the measured peak") {
  MemoryPlanInput in = small_run(64, 192, 128, 2);
  in.attention = AttentionKind::flash;
  using In = QatScheme::Input;
  using Wt = QatScheme::Weight;
  for (const QatScheme scheme : {QatScheme{In::int8_per_token, Wt::int4_min_max, 32},
                                 QatScheme{In::none, Wt::int4_after_fp8, 32}, QatScheme{In::fp8_per_row, Wt::fp8_per_row, 32},
                                 QatScheme{In::mxfp4, Wt::mxfp4, 32}}) {
    in.set_qat(scheme);
    for (int64_t recompute : {0, 1}) {
      in.recompute_every_n_layers = recompute;
      const double planned = plan_memory(in).peak_bytes, measured = measured_peak(in, nullptr, 0, scheme);
      CAPTURE(int(scheme.weight));
      CAPTURE(recompute);
      CAPTURE(planned);
      CAPTURE(measured);
      CHECK(std::fabs(planned - measured) <= 0.05 * measured);
    }
  }
}

// Eval batches 16 and 32 times the training micro-batch: evaluation is the peak, one block's
// tensors of its rows at a time (at width 64 and sequence 128 eager's probabilities are the larger
// moment).
TEST_CASE("eval_batch_size above micro_batch_size: the evaluation forward's peak within 5%") {
  MemoryPlanInput in;
  in.model.num_hidden_layers = 2;
  for (const auto& [width, mlp, seq, eval_rows, attention] :
       {std::tuple{64, 192, 128, 16, AttentionKind::flash}, std::tuple{128, 352, 64, 32, AttentionKind::flash},
        std::tuple{64, 192, 128, 16, AttentionKind::eager}, std::tuple{128, 352, 64, 32, AttentionKind::eager}}) {
    in.model.hidden_size = width;
    in.model.intermediate_size = mlp;
    in.sequence_len = seq;
    in.micro_batch_size = 1;
    in.eval_micro_batch_size = eval_rows;
    in.attention = attention;
    const MemoryPlan plan = plan_memory(in);
    const double measured = measured_peak(in, nullptr, in.eval_micro_batch_size);
    CAPTURE(width);
    CAPTURE(plan.peak_bytes);
    CAPTURE(measured);
    CHECK(plan.peak_when == "evaluation (eval_batch_size rows in one forward)");
    CHECK(std::fabs(plan.peak_bytes - measured) <= 0.05 * measured);
  }
}

TEST_CASE("adapter runs: the planned peak of LoRA and QLoRA is within 5% of the measured peak") {
  MemoryPlanInput in = small_run(128, 384, 64, 2);
  in.attention = AttentionKind::flash;
  LoraConfig lora;
  lora.r = 8, lora.target_linear = true;
  in.trainable_parameters = lora_trainable_parameters(in.model, lora);
  in.frozen_parameters = in.model.num_parameters();
  in.frozen_lm_head = true;
  for (int quant : {0, 1, 2}) {  // none, NF4, int8
    in.quant_linears = quant > 0;
    in.quant_format = quant == 2 ? QuantFormat::int8 : QuantFormat::nf4;
    const double planned = plan_memory(in).peak_bytes, measured = measured_peak(in, &lora);
    CAPTURE(quant);
    CAPTURE(planned);
    CAPTURE(measured);
    CHECK(std::fabs(planned - measured) <= 0.05 * measured);
  }
  // Trainable token rows that lm_head reads (tied): the loss keeps a copy of the table with them
  // and forms the whole table's gradient.
  in.quant_linears = false;
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    in.model.tie_word_embeddings = tied;
    LoraConfig rows = lora;
    rows.embed_token_rows = {3, 7, 11};
    if (!tied) rows.head_token_rows = {5};
    in.trainable_parameters = lora_trainable_parameters(in.model, rows);
    in.head_token_rows = true;
    const double planned = plan_memory(in).peak_bytes, measured = measured_peak(in, &rows);
    CAPTURE(planned);
    CAPTURE(measured);
    CHECK(std::fabs(planned - measured) <= 0.05 * measured);
  }
}

TEST_CASE("Llama-3-8B: categories per rank at ZeRO-1 and ZeRO-3 over 8 ranks") {
  MemoryPlanInput in;
  in.model = *llama_preset("llama3-8b");
  in.sequence_len = 8192;
  in.ranks = 8;
  in.zero_stage = 1;
  in.recompute_every_n_layers = 1;
  in.bf16 = true;
  in.attention = AttentionKind::flash;
  const double P = double(in.model.num_parameters());
  MemoryPlan plan = plan_memory(in);
  auto item = [&](const std::string& name) {
    for (const MemoryItem& i : plan.items)
      if (i.name == name) return i.bytes;
    FAIL("no item " << name);
    return 0.0;
  };
  // ZeRO-1: the bf16 compute copy whole (no casts per use), the f32 master slice.
  CHECK(item("weights") == doctest::Approx(2 * P));
  CHECK(item("master weights") == doctest::Approx(4 * P / 8));
  CHECK(item("gradients") == 4 * P);
  CHECK(item("optimizer state") == doctest::Approx(8 * P / 8));
  CHECK(item("communication buckets") == doctest::Approx(4 * P + 4 * P / 8));
  in.optimizer_8bit = true;
  const double q8 = plan_memory(in).items[3].bytes;
  // u8 m and v and an f32 absmax each per kQuantBlock for every matrix but the token embedding,
  // whose moments stay f32 as the Trainer keeps an nn.Embedding's (and the norms').
  const double C = double(in.model.hidden_size), L = double(in.model.num_hidden_layers);
  const double matrices = P - (2 * L + 1) * C - double(in.model.vocab_size) * C;
  CHECK(q8 == doctest::Approx((matrices * (2 + 8.0 / kQuantBlock) + 8 * (P - matrices)) / 8).epsilon(1e-3));
  CHECK(plan.peak_bytes <= [&] {
    double sum = 0;
    for (const MemoryItem& i : plan.items) sum += i.bytes;
    return sum;
  }());

  // ZeRO-3: whole only one end unit (8B's embeddings are untied: the embedding, or the final norm
  // with lm_head) and one block, weights (gathered in bf16) and gradients (f32) alike, plus the
  // prefetched next block's weights; every other f32 tensor is this rank's eighth. Start-up holds
  // only the shards on the device (each whole weight is on the host), so it is not the peak.
  in.optimizer_8bit = false;
  in.zero_stage = 3;
  plan = plan_memory(in);
  const LlamaConfig& m = in.model;
  const double vc = double(m.vocab_size) * m.hidden_size, end = vc + m.hidden_size;
  const double block = (P - 2 * vc - m.hidden_size) / m.num_hidden_layers;
  CHECK(item("gradients") == doctest::Approx(4 * (end + block)));
  CHECK(item("master weights") == doctest::Approx(4 * P / 8));
  CHECK(item("weights") == doctest::Approx(2 * (end + 2 * block)));
  CHECK(plan.peak_bytes < 0.9 * 80 * 1073741824.0);  // configs/llama3.yaml's margin
  CHECK(plan.peak_when.find("start-up") == std::string::npos);
  // Llama-3-70B over 16 ranks, 8-bit AdamW: with the embedding and lm_head whole only around their
  // use, the peak is under 80 GiB (85.05 GiB when one unit held both through the step).
  MemoryPlanInput big = in;
  big.model = *llama_preset("llama3-70b");
  big.ranks = 16;
  big.optimizer_8bit = true;
  CHECK(plan_memory(big).peak_bytes < 80 * 1073741824.0);
  const double prefetching = item("weights");
  in.forward_prefetch = in.backward_prefetch = false;
  plan = plan_memory(in);
  CHECK(prefetching - item("weights") == doctest::Approx(2 * block));
}

TEST_CASE("Llama-3-8B QLoRA: NF4 block linears, bf16 embeddings and lm_head, only the adapters train") {
  MemoryPlanInput in;
  in.model = *llama_preset("llama3-8b");
  in.bf16 = true;
  LoraConfig lora;
  lora.r = 16, lora.target_linear = true;
  in.trainable_parameters = lora_trainable_parameters(in.model, lora);
  in.frozen_parameters = in.model.num_parameters();
  in.frozen_lm_head = true;
  in.quant_linears = true;
  const MemoryPlan plan = plan_memory(in);
  const double T = double(in.trainable_parameters);
  CHECK(T == 32 * 16 * (2 * (4096 + 4096) + 2 * (1024 + 4096) + 3 * (14336 + 4096)));  // 41.9M
  // 6.98e9 weights in the block linears at 4.127 bits, plus bf16 embedding, lm_head and norms.
  const double linears = 32 * (2 * 4096.0 * 4096 + 2 * 1024.0 * 4096 + 3 * 14336.0 * 4096);
  const double rest = 8030261248.0 - linears;
  CHECK(plan.items[0].bytes == doctest::Approx(linears * (0.5 + 1.0 / 64 + 4.0 / 64 / 256) + 2 * rest +
                                               2 * 14336.0 * 4096 + 2 * T).epsilon(1e-4));
  CHECK(plan.items[1].bytes == 4 * T);  // master weights
  // load_in_8bit: a byte a weight and an f32 scale per row (32 x 43008 rows).
  in.quant_format = QuantFormat::int8;
  CHECK(plan_memory(in).items[0].bytes == doctest::Approx(linears + 4 * 32 * 43008.0 + 2 * rest +
                                                          2 * 14336.0 * 4096 + 2 * T).epsilon(1e-4));
  in.quant_format = QuantFormat::nf4;
  CHECK(plan.items[2].bytes == 4 * T);  // gradients
  CHECK(plan.items[3].bytes == 8 * T);  // AdamW
}

// Under `ulimit -v` the CPU's available memory is what the address space left allows (three
// quarters of it): past RLIMIT_AS an allocation fails, inside OpenBLAS a spin. Checked in a child
// process, whose limit is its mapped size now and 1 GiB more.
TEST_CASE("the CPU's available memory is bounded by what RLIMIT_AS leaves") {
  const pid_t pid = fork();
  if (pid == 0) {
    std::ifstream status("/proc/self/status");
    uint64_t vm_kib = 0;
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stoull(line.substr(7));
    rlimit limit{};
    getrlimit(RLIMIT_AS, &limit);
    limit.rlim_cur = vm_kib * 1024 + (uint64_t{1} << 30);
    if (vm_kib == 0 || setrlimit(RLIMIT_AS, &limit) != 0) _exit(2);
    const uint64_t available = llm::backend(llm::Device::cpu()).available_memory();
    _exit(available >= 1 && available <= (uint64_t{3} << 30) / 4 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 1: not bounded; 2: no VmSize or no limit set
}
