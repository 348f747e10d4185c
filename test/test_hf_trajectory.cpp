// Training trajectories against transformers' own Trainer (test/data/hf_trajectory, written by
// tools/make_hf_trajectory.py): llm_train, given the same model, data and settings, must log the
// Trainer's loss, grad_norm and learning rate at every logged step of a short run, for full
// fine-tuning (untied and tied embeddings, and a subset of the weights by unfrozen_parameters),
// PEFT LoRA, DoRA and LoRA+, Axolotl's optimizer groups, epochs that end inside an accumulation,
// logging_steps 3, the linear schedule with a warmup ratio, the polynomial and inverse_sqrt
// schedules, Axolotl's shuffled data order and its sample packing, SSMax (qat, fp8 and bfloat16:
// test_hf_trajectory_precision; the other optimizers: test_hf_trajectory_optimizers). That
// pins AdamW (bias correction, decoupled decay and which parameters take it), warmup + cosine or
// linear, clipping, the loss of accumulated micro-batches divided by num_items_in_batch, the
// Trainer's steps per epoch, its log window and its order of rows.
#include <doctest/doctest.h>

#include "io/safetensors.h"
#include "train/lisa.h"
#include "test/hf_trajectory_fixture.h"

using namespace llm::testing;
using nlohmann::json;

TEST_CASE("full fine-tuning, untied embeddings: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  check_trajectory("untied", "", steps_of(f, "full_untied"), f.at("settings"));
}

TEST_CASE("full fine-tuning, tied embeddings: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  check_trajectory("tied", "", steps_of(f, "full_tied"), f.at("settings"));
}

TEST_CASE("LoRA from PEFT's initial adapter: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  check_trajectory("untied", lora_yaml(f.at("settings").at("lora")), steps_of(f, "lora"), f.at("settings"));
}

// DoRA: the magnitudes train and decay beside A and B; the weight norms follow B A every step.
TEST_CASE("DoRA from PEFT's initial adapter: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  check_trajectory("untied", lora_yaml(f.at("settings").at("lora"), "dora_init"), steps_of(f, "dora"), f.at("settings"));
}

// PEFT's trainable token rows beside LoRA (peft_trainable_token_indices): each table's rows train
// as a tensor of their own (decayed, as the Trainer groups it), the rest frozen; tied, lm_head
// reads the embedding's trained rows.
TEST_CASE("LoRA with trainable token rows, untied and tied: the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture();
  for (const std::string name : {"lora_tokens_untied", "lora_tokens_tied"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    check_trajectory(c.at("model").get<std::string>(),
                     lora_yaml(f.at("settings").at("lora"), name + "_init") +
                         "peft_trainable_token_indices: " + c.at("trainable_token_indices").dump() + "\n",
                     steps_of(f, name.c_str()), f.at("settings"));
  }
}

// Axolotl's shrink_embeddings: the fixture's 272-row tables cut to the byte tokenizer's 259 ids, as
// transformers' resize_token_embeddings cuts them (their first rows).
TEST_CASE("shrink_embeddings: the Trainer on the model cut to the tokenizer's size, step by step") {
  const json f = fixture();
  check_trajectory("untied", "shrink_embeddings: true\n", steps_of(f, "shrunk"), f.at("settings"));
}

// PEFT's layer replication (peft_layer_replication): the deep model's 4 blocks run as 0, 1, 2, 1, 2,
// 3, a copy sharing its original's frozen weights, every block's adapters its own.
TEST_CASE("LoRA with peft_layer_replication: the Trainer over PEFT's replicated blocks, step by step") {
  const json f = fixture(), c = f.at("cases").at("lora_replicated");
  check_trajectory(c.at("model").get<std::string>(),
                   lora_yaml(f.at("settings").at("lora"), "lora_replicated_init") + "peft_layer_replication: " +
                       c.at("layer_replication").dump() + "\n",
                   c.at("steps"), f.at("settings"));
}

// PEFT's inits from the base weight (peft_init_lora_weights): our own SVD or QR of the same
// weights (LAPACK's), the base keeping the residual; DoRA's magnitudes from it plus B A.
TEST_CASE("LoRA from pissa and olora (and pissa with DoRA): the Trainer over PEFT's own inits, step by step") {
  const json f = fixture(), lora = f.at("settings").at("lora");
  for (const std::string name : {"lora_pissa", "lora_pissa_dora", "lora_olora"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    check_trajectory("untied",
                     lora_keys(lora) + "peft_init_lora_weights: " + c.at("init_lora_weights").get<std::string>() +
                         "\npeft_use_dora: " + c.at("use_dora").dump() + "\n",
                     c.at("steps"), f.at("settings"));
  }
}

// Axolotl's optimizer groups: embeddings at lr x embedding_lr_scale without decay, lr_groups'
// tensors at their own rates; the logged lr is the first group's (the decayed tensors').
TEST_CASE("embedding_lr_scale and lr_groups: Axolotl's grouped AdamW's loss, grad_norm and lr at every step") {
  const json f = fixture(), c = f.at("cases").at("lr_groups");
  check_trajectory("untied",
                   "embedding_lr_scale: " + c.at("embedding_lr_scale").dump() + "\nlr_groups: " + c.at("lr_groups").dump() + "\n",
                   c.at("steps"), f.at("settings"));
}

// unfrozen_parameters: the Trainer on a model whose other weights require no gradient (AdamW,
// decay and the clipped norm over the trained ones only).
TEST_CASE("unfrozen_parameters: the Trainer's loss, grad_norm and lr at every step with the rest frozen") {
  const json f = fixture(), c = f.at("cases").at("unfrozen");
  check_trajectory("untied", "unfrozen_parameters: " + c.at("unfrozen_parameters").dump() + "\n", c.at("steps"),
                   f.at("settings"));
}

// Row ranges: Axolotl's gradient hook zeroes the other rows of lm_head and embed_tokens (ranges
// merged), which the clipped norm then leaves out while weight decay still reaches them.
TEST_CASE("unfrozen_parameters with row ranges: the Trainer with Axolotl's gradient hooks, step by step") {
  const json f = fixture(), c = f.at("cases").at("unfrozen_rows");
  check_trajectory("untied", "unfrozen_parameters: " + c.at("unfrozen_parameters").dump() + "\n", c.at("steps"),
                   f.at("settings"));
}

// A resume reloads the frozen weights from base_model (the checkpoint holds what trains), and the
// exported model holds every weight: the frozen ones exactly as base_model has them.
TEST_CASE("unfrozen_parameters: resumes exactly; the export has every weight, the frozen ones base_model's") {
  Workspace straight("unfrozen_straight"), resumed("unfrozen_resumed");
  const std::string base = kDir + "/untied";
  straight.model_yaml = resumed.model_yaml = "base_model: " + base + "\n";
  const std::string output = check_resume_exact(
      straight, resumed, "unfrozen_parameters: ['^lm_head.weight$', 'model.layers.1.mlp.+']\nmax_steps: 8\nsave_steps: 4\n",
      nullptr, "", 4);
  CHECK(output.find("unfrozen_parameters: 4 of 21 weight tensors train") != std::string::npos);
  const llm::SafetensorsDir exported(straight.out()), original(base);
  REQUIRE(exported.names() == original.names());
  int trained = 0;
  for (const std::string& name : original.names()) {
    CAPTURE(name);
    const std::vector<float> a = exported.read(name, llm::DType::f32).to_floats(), b = original.read(name, llm::DType::f32).to_floats();
    const bool trains = name == "lm_head.weight" || name.rfind("model.layers.1.mlp.", 0) == 0;
    CHECK((a != b) == trains);
    trained += trains;
  }
  CHECK(trained == 4);
  CHECK(llm::read_tensor_file(straight.out("step_000008/model.bin")).tensors.size() == 4);
}

// LoRA+ as Axolotl builds it (PEFT's create_loraplus_optimizer): lora_B at 16 x lr, no decay.
TEST_CASE("LoRA+ from PEFT's initial adapter: PEFT's LoRA+ optimizer's loss, grad_norm and lr at every step") {
  const json f = fixture(), c = f.at("cases").at("loraplus");
  check_trajectory("untied",
                   lora_yaml(f.at("settings").at("lora")) + "loraplus_lr_ratio: " + c.at("loraplus_lr_ratio").dump() + "\n",
                   c.at("steps"), f.at("settings"));
}

// The Trainer logs every third step: the mean loss of the three, the third's grad_norm and lr.
TEST_CASE("logging_steps 3: each record the mean loss of its steps, the last step's grad_norm and lr") {
  const json f = fixture(), c = f.at("cases").at("logging_3");
  json settings = f.at("settings");
  settings["logging_steps"] = c.at("logging_steps");
  check_trajectory("untied", "", c.at("steps"), settings);
}

// The linear schedule with warmup_ratio 0.25 of 10 steps: int(2.5) = 2 warmup steps, as Axolotl
// hands the ratio to the Trainer (whose own ratio would round up).
TEST_CASE("linear schedule, warmup_ratio: the Trainer's lr, loss and grad_norm at every step") {
  const json f = fixture(), c = f.at("cases").at("linear_ratio");
  json settings = f.at("settings");
  settings["lr_scheduler_type"] = c.at("lr_scheduler");
  settings.erase("warmup_steps");
  check_trajectory("tied", "warmup_ratio: " + c.at("warmup_ratio").dump() + "\n", c.at("steps"), settings);
}

// transformers' polynomial (power 1 down to 1e-7) and inverse_sqrt (timescale the 2 warmup steps)
// schedules with their defaults, as get_scheduler builds them without lr_scheduler_kwargs.
TEST_CASE("polynomial and inverse_sqrt schedules: the Trainer's lr, loss and grad_norm at every step") {
  const json f = fixture();
  for (const std::string schedule : {"polynomial", "inverse_sqrt"}) {
    CAPTURE(schedule);
    const json& c = f.at("cases").at(schedule);
    json settings = f.at("settings");
    settings["lr_scheduler_type"] = c.at("lr_scheduler");
    check_trajectory("tied", "", c.at("steps"), settings);
  }
}

// HF's scheduler arguments, as Axolotl passes lr_scheduler_kwargs on.
TEST_CASE("lr_scheduler_kwargs: num_cycles, power, lr_end and timescale as the Trainer's schedules take them") {
  const json f = fixture();
  for (const std::string name : {"cosine_cycles", "restarts_2", "polynomial_power", "inverse_sqrt_timescale"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["lr_scheduler_type"] = c.at("lr_scheduler");
    check_trajectory("tied", "lr_scheduler_kwargs: " + c.at("lr_scheduler_kwargs").dump() + "\n", c.at("steps"), settings);
  }
}

// HF's schedules with a floor, which Axolotl hands to get_scheduler with lr_scheduler_kwargs.
TEST_CASE("cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay: the Trainer's lr, step by step") {
  const json f = fixture();
  for (const std::string name : {"cosine_min_lr", "cosine_warmup_min_lr", "wsd", "wsd_stable"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    check_trajectory("tied", "lr_scheduler: " + c.at("lr_scheduler").get<std::string>() + "\nlr_scheduler_kwargs: " +
                                 c.at("lr_scheduler_kwargs").dump() + "\n",
                     c.at("steps"), f.at("settings"));
  }
}

// Axolotl's one_cycle: torch's OneCycleLR over the Trainer's AdamW, which also cycles beta1 (the
// trajectory shows it: the rate alone leaves beta1 at adam_beta1 and trains differently).
TEST_CASE("one_cycle: torch's OneCycleLR, its rate and AdamW's beta1, step by step") {
  const json f = fixture();
  for (const std::string name : {"one_cycle", "one_cycle_three_phase", "one_cycle_rate_only"}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    json settings = f.at("settings");
    settings["lr_scheduler_type"] = c.at("lr_scheduler");
    check_trajectory("tied", "lr_scheduler_kwargs: " + c.at("lr_scheduler_kwargs").dump() + "\n", c.at("steps"), settings);
  }
}

// Axolotl's lr_quadratic_warmup: (step / warmup)^2 up to learning_rate, then the cosine.
TEST_CASE("lr_quadratic_warmup: Axolotl's quadratic warmup into the cosine, step by step") {
  const json f = fixture(), c = f.at("cases").at("quadratic_warmup");
  json settings = f.at("settings");
  settings["warmup_steps"] = c.at("warmup_steps");
  check_trajectory("tied", "lr_quadratic_warmup: true\n", c.at("steps"), settings);
}

// 9 micro-batches an epoch with accumulation 2: the Trainer ends each epoch with a step of the one
// micro-batch left (its loss divided by that micro-batch's targets), 5 steps an epoch; given
// Axolotl's max_steps ceil(18 x 2 / 4) = 9, the second epoch stops before its short step.
TEST_CASE("epochs that end inside an accumulation: the Trainer's steps, a short one at each epoch end") {
  const json f = fixture(), c = f.at("cases").at("epoch_end");
  json settings = f.at("settings");
  settings.erase("max_steps");
  const std::string epochs = "num_epochs: " + c.at("num_epochs").dump() + "\n";
  // The Trainer's state.epoch at each log: the epochs done and this one's share of micro-batches
  // (epoch + (step + 1) / len(dataloader)), so 2/9, 4/9, ..., 8/9, 1 and on.
  json steps = c.at("steps");
  for (json& step : steps) {
    const int64_t s = step.at("step").get<int64_t>() - 1;
    step["epoch"] = static_cast<double>(s / 5) + static_cast<double>(std::min<int64_t>(2 * (s % 5 + 1), 9)) / 9;
  }
  check_trajectory("untied", epochs, steps, settings, "train[:" + c.at("examples").dump() + "]");
}

// Evaluation every 5 steps on 5 rows of 20 to 64 ids, one at a time: the Trainer's eval_loss is
// the mean of each example's own mean token loss (each eval batch's mean weighted by its rows).
TEST_CASE("eval_loss with eval_batch_size 1: the Trainer's, each example weighing the same") {
  const json f = fixture(), c = f.at("cases").at("eval_loss");
  check_evals(check_trajectory("untied", eval_keys(c), c.at("steps"), f.at("settings")), c.at("evals"));
}

// The same rows two at a time: the Trainer's eval loader serves them in order ({0, 1}, {2, 3},
// {4}), so a batch's mean depends on which rows share it; with dataloader_drop_last it drops {4}.
TEST_CASE("eval_loss with eval_batch_size 2: the Trainer's batches, in order, the last dropped with drop_last") {
  const json f = fixture();
  for (const std::string name : {"eval_batches", "eval_drop_last"}) {
    CAPTURE(name);
    const json c = f.at("cases").at(name);
    const std::string drop = "dataloader_drop_last: " + c.at("dataloader_drop_last").dump() + "\n";
    check_evals(check_trajectory("untied", eval_keys(c) + drop, c.at("steps"), f.at("settings")), c.at("evals"));
  }
}

// HF's reduce_lr_on_plateau: the Trainer steps torch's ReduceLROnPlateau with eval_loss at each
// evaluation but the one at the start; the rate halves at steps 4 and 8 (not 10% better than the
// best, patience 0, a cooldown of one evaluation between).
TEST_CASE("reduce_lr_on_plateau: the Trainer's rate, lowered at evaluations, step by step") {
  const json f = fixture(), c = f.at("cases").at("plateau");
  json settings = f.at("settings");
  settings["lr_scheduler_type"] = c.at("lr_scheduler");
  check_evals(check_trajectory("tied", eval_keys(c) + "lr_scheduler_kwargs: " + c.at("lr_scheduler_kwargs").dump() + "\n",
                               c.at("steps"), settings),
              c.at("evals"));
}

// Its rate and what the next evaluations compare with travel in the checkpoint: the evaluation at
// step 2 sets the best, and the rate halves at each later one (none is 50% better), at step 4 just
// before the resume too.
TEST_CASE("reduce_lr_on_plateau: resumes exactly") {
  Workspace straight("plateau_straight"), resumed("plateau_resumed");
  const std::string output = check_resume_exact(
      straight, resumed,
      "lr_scheduler: reduce_lr_on_plateau\nlr_scheduler_kwargs: {factor: 0.5, patience: 0, threshold: 0.5}\n"
      "eval_steps: 2\nmax_steps: 8\nsave_steps: 4\n",
      nullptr, "", 4);
  CHECK(output.find("lr 7.500e-04") != std::string::npos);  // 0.003 halved twice by step 7
}

// Axolotl's defaults (shuffle_merged_datasets, no curriculum_sampling) against the Trainer given
// the rows as Axolotl hands them over: shuffled as HF's Dataset.shuffle(seed), the last ones held
// out, the rest in the Trainer's own random order (torch.randperm from seed + epoch). Any other
// order gives other micro-batches, so other losses from the first step on.
TEST_CASE("Axolotl's data order: its shuffle, its validation rows, the Trainer's epochs, step by step") {
  const json f = fixture(), c = f.at("cases").at("shuffled");
  json settings = f.at("settings");
  settings.erase("max_steps");
  const std::string keys = "num_epochs: " + c.at("num_epochs").dump() + "\neval_steps: " + c.at("eval_steps").dump() +
                           "\neval_batch_size: " + c.at("eval_batch_size").dump() + "\n";
  const std::string order = "val_set_size: " + c.at("val_set_size").dump() + "\n";
  check_evals(check_trajectory("untied", keys, c.at("steps"), settings, "train", 1 << 30, order), c.at("evals"));
}

// group_by_length (no curriculum_sampling, the file's order merged): HF's LengthGroupedSampler
// draws each epoch's permutation from torch's global generator, which each evaluation's DataLoader
// advances too, and orders the eval rows by length from a generator of its own (9 rows two at a
// time: the batches' mix of rows sets the eval_loss). A wrong draw gives other micro-batches.
TEST_CASE("group_by_length: the Trainer's length-grouped epochs and eval batches, step by step") {
  const json f = fixture(), c = f.at("cases").at("group_by_length");
  json settings = f.at("settings");
  settings.erase("max_steps");
  const std::string keys = "group_by_length: true\nnum_epochs: " + c.at("num_epochs").dump() + "\n" + eval_keys(c);
  check_evals(check_trajectory("untied", keys, c.at("steps"), settings, "train", 1 << 30,
                               "shuffle_merged_datasets: false\nval_set_size: 0\n"),
              c.at("evals"));
}

// Axolotl's use_eaft loss as the Trainer's compute_loss_func (alpha 0.5 over the 8 largest
// logits), in training and in evaluation.
TEST_CASE("use_eaft: the Trainer with Axolotl's EAFT loss, step by step and evaluated") {
  const json f = fixture(), c = f.at("cases").at("eaft");
  const std::string eaft = "use_eaft: true\neaft_alpha: " + c.at("eaft_alpha").dump() + "\neaft_k: " +
                           c.at("eaft_k").dump() + "\n";
  check_evals(check_trajectory("untied", eaft + eval_keys(c), c.at("steps"), f.at("settings")), c.at("evals"));
}

// DFT (Axolotl's: each target's cross-entropy times exp(-it), the weight held), in training and in
// evaluation.
TEST_CASE("use_dft: the Trainer with DFT's loss, step by step and evaluated") {
  const json f = fixture(), c = f.at("cases").at("dft");
  check_evals(check_trajectory("untied", "use_dft: true\n" + eval_keys(c), c.at("steps"), f.at("settings")), c.at("evals"));
}

// PoSE (a context of 4096 over rows of at most 64 tokens): the Trainer given, in each row, the
// position ids Axolotl's add_pose_position_ids makes with llm_train's draws, the rows sorted by
// their last one as Axolotl sorts them.
TEST_CASE("use_pose: the Trainer on the same PoSE position ids, step by step") {
  const json f = fixture(), c = f.at("cases").at("pose");
  check_trajectory("untied", "use_pose: true\npose_max_context_len: " + c.at("pose_max_context_len").dump() + "\n",
                   c.at("steps"), f.at("settings"));
}

// Axolotl's sample_packing, sequentially (next fit in file order), on the rows as a completion
// dataset labels them (every id a target): bins of micro_batch_size x sequence_len, one a
// micro-batch, the examples masked apart. transformers shifts the labels along the whole bin, so
// each example's last token predicts the next one's first id (Axolotl trains that target too).
TEST_CASE("sample_packing: the Trainer on Axolotl's bins, step by step, its targets across examples") {
  const json f = fixture(), c = f.at("cases").at("packed");
  json settings = f.at("settings");
  settings["max_steps"] = c.at("max_steps");
  check_trajectory("untied", "sample_packing: true\nsample_packing_sequentially: true\nflash_attention: true\n",
                   c.at("steps"), settings, "train", 1 << 30, kFileOrder, "data_completion.jsonl");
}

// Axolotl's sample_packing with no attention key: bins of sequence_len, micro_batch_size of them a
// micro-batch (multipack_real_batches), and transformers' default attention causal over each whole
// row, so an example attends to the examples before it (Axolotl warns of it), positions restarting.
// (The same bins with flash_attention's document masks: 2.8e-3 loss, 3.5e-2 grad norm away.)
TEST_CASE("sample_packing without an attention key: the Trainer's rows attending across their examples") {
  const json f = fixture(), c = f.at("cases").at("packed_across");
  json settings = f.at("settings");
  settings["max_steps"] = c.at("max_steps");
  check_trajectory("untied", "sample_packing: true\nsample_packing_sequentially: true\n", c.at("steps"), settings,
                   "train", 1 << 30, kFileOrder, "data_completion.jsonl");
}

// SSMax (Axolotl's scaling_softmax): the Trainer on attention with Axolotl's score_mod
// (tools/hf_trajectory_ssmax.py), its defaults on padded rows (eager here) and evaluated, and a
// factor and bias of its own on packed bins (flash's document masks here), n counting within each
// example.
TEST_CASE("scaling_softmax: the Trainer with Axolotl's SSMax scores, step by step, evaluated and packed") {
  const json f = fixture();
  auto ssmax_yaml = [](const json& c) {
    return "scaling_softmax: true\nscaling_softmax_factor: " + c.at("scaling_softmax_factor").dump() +
           "\nscaling_softmax_bias: " + c.at("scaling_softmax_bias").dump() + "\n";
  };
  const json& c = f.at("cases").at("ssmax");
  check_evals(check_trajectory("untied", ssmax_yaml(c) + eval_keys(c), c.at("steps"), f.at("settings")), c.at("evals"));
  const json& p = f.at("cases").at("ssmax_packed");
  json settings = f.at("settings");
  settings["max_steps"] = p.at("max_steps");
  check_trajectory("tied", ssmax_yaml(p) + "sample_packing: true\nsample_packing_sequentially: true\nflash_attention: true\n",
                   p.at("steps"), settings, "train", 1 << 30, kFileOrder, "data_completion.jsonl");
}

// 15 rows in micro-batches of 2 without dataloader_drop_last (HF's default): each epoch ends with
// a micro-batch of one row, which the Trainer keeps, in a step with one whole micro-batch besides.
TEST_CASE("an epoch's last, smaller micro-batch (no dataloader_drop_last): the Trainer's steps") {
  const json f = fixture(), c = f.at("cases").at("partial_batch");
  json settings = f.at("settings");
  settings.erase("max_steps");
  const std::string epochs = "num_epochs: " + c.at("num_epochs").dump() + "\n";
  REQUIRE(c.at("steps").size() == 8);
  check_trajectory("untied", epochs, c.at("steps"), settings, "train[:" + c.at("examples").dump() + "]");
}

// Axolotl's LISA callback on the Trainer: every 3 steps 2 of the 4 layers train, drawn by numpy
// seeded with the step; the others keep their weights, AdamW moments and step counts (torch's
// AdamW skips a parameter without a gradient), which the layers thawed later resume from.
TEST_CASE("LISA: Axolotl's layer draws, and the Trainer's loss, grad_norm and lr at every step") {
  const json f = fixture(), c = f.at("cases").at("lisa");
  const int64_t n = c.at("lisa_n_layers"), interval = c.at("lisa_step_interval");
  for (const json& draw : c.at("draws")) {
    CAPTURE(draw.dump());
    CHECK(llm::lisa_layers(4, n, draw.at("step").get<uint32_t>()) == draw.at("layers").get<std::vector<int64_t>>());
  }
  check_trajectory("deep", "lisa_n_layers: " + std::to_string(n) + "\nlisa_step_interval: " + std::to_string(interval) + "\n",
                   c.at("steps"), f.at("settings"));
}

// Sparse fine-tuning as Axolotl's LLMCompressorPlugin runs llmcompressor's ConstantPruningModifier
// on a 2:4-sparse model: the Trainer's AdamW moves every weight, and each step's end zeroes again
// the ones that started at zero.
TEST_CASE("llmcompressor ConstantPruningModifier: the Trainer with its masks, step by step") {
  const json f = fixture(), c = f.at("cases").at("sparse");
  std::string targets;
  for (const json& t : c.at("targets")) targets += (targets.empty() ? "" : ", ") + t.dump();
  check_trajectory("sparse24",
                   "llmcompressor:\n  recipe:\n    finetuning_stage:\n      finetuning_modifiers:\n"
                   "        ConstantPruningModifier:\n          targets: [" + targets + "]\n          start: 0\n",
                   c.at("steps"), f.at("settings"));
}
