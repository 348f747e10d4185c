// Training trajectories of the optimizers other than the Trainer's AdamW against transformers'
// own Trainer (test/data/hf_trajectory, tools/hf_trajectory_optimizers.py and
// tools/hf_trajectory_galore.py, tools/hf_trajectory_apollo.py): the Trainer's other optimizers by
// name, Axolotl's own optimizer classes as Axolotl builds them, GaLore and APOLLO; the loss,
// grad_norm and learning rate at every step.
#include <doctest/doctest.h>

#include "test/hf_trajectory_fixture.h"

using namespace llm::testing;
using nlohmann::json;

// The Trainer's other optimizers by name: transformers' Adafactor; bitsandbytes' (0.50.2's CPU
// kernels) Lion with the Trainer's Adam betas, f32 and 8-bit momentum, AdEMAMix (8-bit with
// optim_args: beta3, alpha and their warmups) and 8-bit AdamW, whose token embedding the Trainer
// keeps in f32 state (without that, 2.6e-3 loss and 2.2e-2 grad_norm apart). 8-bit AdamW's and
// AdEMAMix's first steps as close as the others; later ones within 1e-5 loss and 1e-4 grad_norm
// (measured 3.0e-6 and 4.2e-5, 1.9e-6 and 2.9e-5): bitsandbytes' CPU quantiser is coarse for values under 1e-3 of a block's
// absmax (test_bnb_optimizers), where its CUDA kernels and ours take the nearest code, and the
// second moment has many.
// rmsprop_bnb and rmsprop_bnb_8bit: bitsandbytes' RMSprop, its 8-bit square_avg as 8-bit AdamW's.
TEST_CASE("adafactor, lion, ademamix, adamw_8bit and rmsprop_bnb: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"adafactor", "lion_32bit", "lion_8bit", "ademamix", "ademamix_8bit", "adamw_8bit",
                                 "rmsprop_bnb", "rmsprop_bnb_8bit"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["optim"] = c.at("optim");
    const std::string extra = c.contains("optim_args") ? "optim_args: '" + c.at("optim_args").get<std::string>() + "'\n" : "";
    const int64_t exact_steps = name == "adamw_8bit" || name == "ademamix_8bit" || name == "rmsprop_bnb_8bit" ? 1 : 1 << 30;
    // RMSprop steps by g / sqrt(square_avg) itself, so the codes bitsandbytes' CPU quantiser puts
    // elsewhere for small square_avg move it more: measured 1.9e-5 loss, 1.8e-4 grad_norm.
    const LaterSteps later = name == "rmsprop_bnb_8bit" ? LaterSteps{5e-5, 5e-4} : LaterSteps{1e-5, 1e-4};
    check_trajectory("untied", extra, c.at("steps"), settings, "train", exact_steps, kFileOrder, "data.jsonl", later);
  }
}

// Axolotl's `optimizer: muon` (axolotl-contribs-mit 0.0.6, Moonlight's Muon) through its own
// factory: its Newton-Schulz rounds to bf16, so the steps after the first update carry bf16
// rounding differences (torch.compile may fuse elementwise steps that ours round apart; measured
// 4.4e-6 loss and 5.4e-5 grad_norm at most); with optim_args (momentum, no Nesterov, three
// iterations) on the tied model.
TEST_CASE("muon: Axolotl's Muon's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"muon", "muon_args"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    // optim_args as a map (JSON is YAML): Axolotl passes a string's values on as strings.
    const std::string extra = "optimizer: muon\n" +
                              (c.contains("optim_args") ? "optim_args: " + c.at("optim_args").dump() + "\n" : std::string());
    check_trajectory(name == "muon" ? "untied" : "tied", extra, c.at("steps"), f.at("settings"), "train", 2,
                     kFileOrder, "data.jsonl", LaterSteps{2e-5, 2e-4});
  }
  // one_cycle: torch's OneCycleLR cycles Muon's momentum (its defaults hold no betas).
  const json& c = f.at("cases").at("muon_one_cycle");
  json settings = f.at("settings");
  settings["lr_scheduler_type"] = c.at("lr_scheduler");
  check_trajectory("untied", "optimizer: muon\n", c.at("steps"), settings, "train", 2, kFileOrder, "data.jsonl",
                   LaterSteps{2e-5, 2e-4});
}

// Axolotl's optimi_adamw: torch-optimi's AdamW over the groups Axolotl's create_optimizer makes
// for its own optimizer classes (the untied model's embed_tokens and lm_head without decay), given
// the settings' betas and eps (its own defaults: test_config). It keeps its moments debiased, the
// same update in other roundings.
TEST_CASE("optimi_adamw: torch-optimi's AdamW's loss, grad_norm and lr at every step") {
  const json f = fixture();
  const json& c = f.at("cases").at("optimi_adamw");
  check_trajectory("untied", "optimizer: optimi_adamw\n", c.at("steps"), f.at("settings"));
}


// Axolotl's adamc (AdamC: AdamW decaying by weight_decay x lr^2 / max_lr) over Axolotl's groups,
// at weight decay 0.5, so that its correction of the decay shows at every step of the warmup and
// the cosine; then optim_args' max_lr on the tied model.
TEST_CASE("adamc: Axolotl's AdamC's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"adamc", "adamc_max_lr"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["weight_decay"] = c.at("weight_decay");
    const std::string extra = "optimizer: adamc\n" +
                              (c.contains("optim_args") ? "optim_args: " + c.at("optim_args").dump() + "\n" : std::string());
    check_trajectory(name == "adamc" ? "untied" : "tied", extra, c.at("steps"), settings);
  }
}

// Axolotl's came_pytorch (came_pytorch 0.1.3's CAME) over Axolotl's groups: without adam_epsilon
// (CAME's eps1 then its 1e-30), then on the tied model with adam_epsilon, adam_beta3,
// adam_epsilon2 and optim_args' clip_threshold as Axolotl hands them on.
TEST_CASE("came_pytorch: CAME's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"came", "came_args"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    if (c.contains("adam_epsilon") && c.at("adam_epsilon").is_null()) settings.erase("adam_epsilon");
    std::string extra = "optimizer: came_pytorch\n";
    for (const char* key : {"adam_beta3", "adam_epsilon2"})
      if (c.contains(key)) extra += std::string(key) + ": " + c.at(key).dump() + "\n";
    if (c.contains("optim_args")) extra += "optim_args: " + c.at("optim_args").dump() + "\n";
    check_trajectory(name == "came" ? "untied" : "tied", extra, c.at("steps"), settings);
  }
}

// transformers' schedule_free_* (schedulefree 1.4.1): AdamW with its own warmup over the cosine's,
// evaluated at the start and every 5 steps, so the weights go from y to x and back mid-run as the
// Trainer's optimizer.eval() / .train() move them, and the same under one_cycle; RAdam (its rectified rate) on the tied model;
// SGD under the constant schedule with optim_args' weight_lr_power and r.
TEST_CASE("schedule_free_*: Schedule-Free's loss, grad_norm, lr and eval_loss at every step") {
  const json f = fixture();
  const json& adamw = f.at("cases").at("schedule_free_adamw");
  check_evals(check_trajectory("untied", "optimizer: schedule_free_adamw\n" + eval_keys(adamw), adamw.at("steps"),
                               f.at("settings")),
              adamw.at("evals"));
  // one_cycle: OneCycleLR cycles beta1 after each update, so an evaluation's x reads the next one's.
  const json& cycled = f.at("cases").at("schedule_free_one_cycle");
  json one_cycle = f.at("settings");
  one_cycle["lr_scheduler_type"] = cycled.at("lr_scheduler");
  one_cycle["learning_rate"] = cycled.at("learning_rate");
  check_evals(check_trajectory("untied", "optimizer: schedule_free_adamw\n" + eval_keys(cycled), cycled.at("steps"),
                               one_cycle),
              cycled.at("evals"));
  const json& radam = f.at("cases").at("schedule_free_radam");
  check_trajectory("tied", "optimizer: schedule_free_radam\n", radam.at("steps"), f.at("settings"));
  const json& sgd = f.at("cases").at("schedule_free_sgd");
  json settings = f.at("settings");
  for (const char* key : {"learning_rate", "lr_scheduler_type"}) settings[key] = sgd.at(key);
  check_trajectory("tied", "optimizer: schedule_free_sgd\noptim_args: " + sgd.at("optim_args").get<std::string>() + "\n",
                   sgd.at("steps"), settings);
}

// transformers' adamw_torch_8bit: torchao 0.18's AdamW8bit (its compiled update on the CPU; the
// token embedding's state 8-bit too, where bitsandbytes' Trainer keeps it f32). Its update is
// torchao's bit for bit (test_torchao_optimizer); here the first five steps are as close as the
// others, then a moment rounds to another code where the two runs' gradients differ in the last
// bits, and the steps after carry it (measured: 5.4e-5 loss, 8.8e-4 grad norm at step 10).
TEST_CASE("adamw_torch_8bit: torchao's AdamW8bit's loss, grad_norm and lr at every step") {
  const json f = fixture();
  const json& c = f.at("cases").at("adamw_torch_8bit");
  check_trajectory("untied", "optimizer: adamw_torch_8bit\n", c.at("steps"), f.at("settings"), "train", 5,
                   kFileOrder, "data.jsonl", LaterSteps{1e-4, 2e-3});
}

// transformers' adamw_torch_4bit: torchao 0.18's AdamW4bit (block_size 256, as transformers hands
// it), the same tensors in 4-bit codes; its update is torchao's bit for bit (test_torchao_optimizer),
// and all 10 steps stay as close as the f32 cases (measured 2026-12-02: loss within 8.4e-8, grad
// norm 2.4e-7 relative).
TEST_CASE("adamw_torch_4bit: torchao's AdamW4bit's loss, grad_norm and lr at every step") {
  const json f = fixture();
  const json& c = f.at("cases").at("adamw_torch_4bit");
  check_trajectory("untied", "optimizer: adamw_torch_4bit\n", c.at("steps"), f.at("settings"));
}

// Axolotl's ao_adamw_fp8: torchao 0.18's AdamWFp8 over Axolotl's groups (embed_tokens and lm_head
// without decay), the same tensors' state in float8 e4m3 codes; its update is torchao's bit for
// bit (test_torchao_optimizer), and the 10 steps stay within the default limits (measured
// 2026-12-03: loss within 4.2e-7, grad norm 6.9e-6 relative).
TEST_CASE("ao_adamw_fp8: torchao's AdamWFp8's loss, grad_norm and lr at every step") {
  const json f = fixture();
  const json& c = f.at("cases").at("ao_adamw_fp8");
  check_trajectory("untied", "optimizer: ao_adamw_fp8\n", c.at("steps"), f.at("settings"));
}

// transformers' sgd, adagrad and rmsprop: torch.optim's, from optim_args (SGD with Nesterov
// momentum at lr 0.1, Adagrad's decaying rate, centered RMSprop with momentum and alpha 0.9).
TEST_CASE("sgd, adagrad, rmsprop: torch.optim's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"sgd", "adagrad", "rmsprop"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["learning_rate"] = c.at("learning_rate");
    check_trajectory("untied", "optimizer: " + name + "\noptim_args: " + c.at("optim_args").get<std::string>() + "\n",
                     c.at("steps"), settings);
  }
}

// Under Axolotl's one_cycle, torch's OneCycleLR sets SGD's and (centered) RMSprop's momentum
// before every update, from 0.95 down to 0.85 and back against the rate, in place of their own.
TEST_CASE("sgd, rmsprop under one_cycle: OneCycleLR's momentum at every step") {
  const json f = fixture();
  for (const std::string name : {"sgd", "rmsprop"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name + "_one_cycle");
    json settings = f.at("settings");
    settings["learning_rate"] = c.at("learning_rate");
    settings["lr_scheduler_type"] = c.at("lr_scheduler");
    const std::string args = c.contains("optim_args") ? "optim_args: " + c.at("optim_args").get<std::string>() + "\n" : "";
    check_trajectory("untied", "optimizer: " + name + "\n" + args, c.at("steps"), settings);
  }
}

// transformers' stable_adamw: torch-optimi's StableAdamW (each tensor's rate divided by its RMS
// of g^2 / max(v_hat, eps^2) above 1) over the Trainer's groups and Adam settings; then on the tied
// model at lr 1e-2 with optim_args' decouple_lr (its decay weight_decay x lr / max_lr) and max_lr.
TEST_CASE("stable_adamw: torch-optimi's StableAdamW's loss, grad_norm and lr at every step") {
  const json f = fixture();
  const json& plain = f.at("cases").at("stable_adamw");
  check_trajectory("untied", "optimizer: stable_adamw\n", plain.at("steps"), f.at("settings"));
  const json& decoupled = f.at("cases").at("stable_adamw_decoupled");
  json settings = f.at("settings");
  settings["learning_rate"] = decoupled.at("learning_rate");
  check_trajectory("tied", "optimizer: stable_adamw\noptim_args: '" + decoupled.at("optim_args").get<std::string>() + "'\n",
                   decoupled.at("steps"), settings);
}

// transformers' grokadamw: the grokadamw package's GrokAdamW over the Trainer's groups (each
// tensor's gradient clipped to its own norm, an EMA of it added at lamb, beta1 x (1 - gamma)^i along
// each group, the class's betas and eps); then on the tied model with every optim_arg it reads.
TEST_CASE("grokadamw: GrokAdamW's loss, grad_norm and lr at every step") {
  const json f = fixture();
  check_trajectory("untied", "optimizer: grokadamw\n", f.at("cases").at("grokadamw").at("steps"), f.at("settings"));
  const json& c = f.at("cases").at("grokadamw_args");
  check_trajectory("tied", "optimizer: grokadamw\noptim_args: '" + c.at("optim_args").get<std::string>() + "'\n",
                   c.at("steps"), f.at("settings"));
}

// transformers' galore_adamw, galore_adafactor and galore_adamw_8bit (galore_torch 1.0) from optim_target_modules
// and optim_args: the attention and MLP linears by substring under transformers' old AdamW, one
// basis from torch's own SVD; the same recomputing its bases every 4 updates (twice in the run,
// the moments carried across); every linear (lm_head's 8-bit moments among them) under
// bitsandbytes' 8-bit AdamW (its decay 0.01 on every tensor, the token embedding's and lm_head's
// low-rank moments 8-bit). A basis vector's sign is its LAPACK's choice, which shows once moments
// cross a recomputation: those cases' singular vectors are signed as ours (largest element
// positive; tools/hf_trajectory_galore.py). The 8-bit class runs as galore_torch means it to
// (hf_trajectory_galore.with_bnb050_init: under bitsandbytes 0.50 its constructor's old
// arguments land on max_unorm and skip_zeros, which freeze every projected matrix whose low-rank
// state is f32), requantising as bitsandbytes' CUDA kernels do. Its 8-bit moments (lm_head's
// among them) take another code where the last bit of a gradient moves: since the fused loss forms
// lm_head's gradient scaled by the seed backward will give (linear_cross_entropy's grad_seed) rather
// than scaling it after, steps past the second are within 2e-5 loss and 2e-4 grad_norm (measured
// 8.1e-6 and 1.2e-4; before, 8.5e-8 and 1.6e-7 by the other rounding: neither order is torch's,
// and the other cases' differences moved both ways, by about 1e-7).
namespace {
// A GaLore case's keys: its optimizer, optim_args and targets.
std::string galore_yaml(const json& c) {
  const json& targets = c.at("optim_target_modules");
  return "optimizer: " + c.at("optim").get<std::string>() + "\noptim_args: '" + c.at("optim_args").get<std::string>() +
         "'\noptim_target_modules: " + (targets.is_string() ? targets.get<std::string>() : targets.dump()) + "\n";
}
}  // namespace

TEST_CASE("galore_adamw, galore_adafactor, galore_adamw_8bit: GaLore's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"galore_adamw", "galore_adamw_refresh", "galore_adafactor", "galore_adamw_8bit"}) {
    CAPTURE(name);
    const int64_t exact_steps = name == "galore_adamw_8bit" ? 2 : 1 << 30;
    check_trajectory("untied", galore_yaml(f.at("cases").at(name)), steps_of(f, name.c_str()), f.at("settings"), "train",
                     exact_steps, kFileOrder, "data.jsonl", LaterSteps{2e-5, 2e-4});
  }
}

// transformers' galore_adamw_layerwise and galore_adamw_8bit_layerwise: each parameter's optimizer
// and schedule stepped in backward as its gradient completes, unclipped, one micro-batch a
// step (the fixture gives each parameter its schedule, which transformers 5 drops:
// tools/hf_trajectory_galore.py). The Trainer logs a grad_norm of 0 then (its clipping finds no
// gradient left); the fixture's is the norm of the gradients its own hook saw before each update,
// which ours logs. The 8-bit class as galore_adamw_8bit's above.
TEST_CASE("galore_*_layerwise: layer-wise GaLore's loss, grad_norm and lr at every step") {
  const json f = fixture();
  json settings = f.at("settings");
  settings["gradient_accumulation_steps"] = 1;
  settings.erase("max_grad_norm");  // unused: nothing is clipped
  for (const std::string name : {"galore_adamw_layerwise", "galore_adamw_8bit_layerwise"}) {
    CAPTURE(name);
    check_trajectory("untied", galore_yaml(f.at("cases").at(name)), steps_of(f, name.c_str()), settings);
  }
}

// transformers' lomo and adalomo: lomo_optim's LOMO (SGD) and AdaLomo (Adafactor at the rate
// times each parameter's RMS, a pass a step of its decay rate) at lr 0.1 in every micro-batch's
// backward (two a step on the untied model, one on the tied one, whose table takes its summed
// gradient once). The Trainer logs a grad_norm of 0; the fixture's is the root of the summed
// squares of every pass's gradients, which ours logs.
TEST_CASE("lomo, adalomo: LOMO's and AdaLomo's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"lomo", "lomo_tied", "adalomo", "adalomo_tied"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["learning_rate"] = c.at("learning_rate");
    if (c.contains("gradient_accumulation_steps")) settings["gradient_accumulation_steps"] = c.at("gradient_accumulation_steps");
    for (const char* unused : {"weight_decay", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon"})
      settings.erase(unused);
    check_trajectory(name.find("tied") == std::string::npos ? "untied" : "tied",
                     "optimizer: " + c.at("optim").get<std::string>() + "\n", c.at("steps"), settings);
  }
}

// transformers' apollo_adamw and apollo_adamw_layerwise (apollo_torch 1.0.3) from
// optim_target_modules and optim_args: random bases of rank 16 redrawn every 4 updates (torch's CPU
// generator, seeded by each parameter's position) with a factor a channel; APOLLO-Mini (rank 1,
// one factor a tensor, scale 128) over every linear; SVD bases (signed as ours:
// tools/hf_trajectory_apollo.py) under reverse_std with the Trainer's beta2 0.99 for the projected
// tensors; the layer-wise build, each parameter's optimizer first (seed 1) and its own schedule.
// torch's vectorised randn takes its own log, sine and cosine: the bases agree to a few units in
// the last place (test_torch_generator), the runs to the tolerance of the others.
TEST_CASE("apollo_adamw, apollo_adamw_layerwise: APOLLO's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"apollo_adamw", "apollo_mini", "apollo_svd", "apollo_adamw_layerwise"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    for (const auto& [key, value] : c.at("settings").items()) settings[key] = value;
    if (name == "apollo_adamw_layerwise") {
      settings["gradient_accumulation_steps"] = 1;
      settings.erase("max_grad_norm");  // unused: nothing is clipped
    }
    check_trajectory("untied", galore_yaml(c), c.at("steps"), settings);
  }
}

// Axolotl's q_galore_adamw8bit (q-galore-torch 1.0 under Axolotl 0.19's bitsandbytes patch): its
// targets the 2-D parameters whose name holds an entry, galore_adamw_8bit's update with the
// Trainer's lr, weight_decay, betas and eps. 4-bit bases in groups of 256 (recomputed every 2
// updates, the gap doubling once the last 2 top singular vectors average a similarity of 0.4)
// with 8-bit moments (Axolotl patches this class's constructor for bitsandbytes 0.50); then with f32 moments
// (optim_args min_8bit_size 10^9): every matrix projected, the embedding's and lm_head's too, the
// gap tripling from the third basis on; f32 bases; 2-bit bases in groups of 128. With f32 moments
// and bases every step is as close as the others; a coded basis may put an element a level away
// from torch's once a basis is recomputed from gradients that differ in the last bits (an element
// within rounding of a level's edge), as qat's levels do: measured 2.6e-6 in loss and 3.6e-5 in
// grad norm by step 10, held to 1e-5 and 1e-4 after the first two steps.
TEST_CASE("q_galore_adamw8bit: Q-GaLore's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"q_galore", "q_galore_growing", "q_galore_f32_bases", "q_galore_2bit"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    std::string keys = "optimizer: q_galore_adamw8bit\noptim_target_modules: " + c.at("optim_target_modules").dump() + "\n";
    for (const auto& [key, value] : c.at("qgalore").items())
      keys += "qgalore_" + key + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
    if (!c.at("optim_args").empty()) keys += "optim_args: " + c.at("optim_args").dump() + "\n";
    const bool coded = c.at("qgalore").at("proj_quant").get<bool>();
    check_trajectory("untied", keys, c.at("steps"), f.at("settings"), "train", coded ? 2 : 1 << 30, kFileOrder,
                     "data.jsonl", LaterSteps{1e-5, 1e-4});
  }
}
