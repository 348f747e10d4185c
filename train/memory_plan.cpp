// defines: plan_memory, format_memory_plan, MemoryPlan::largest
#include "train/memory_plan.h"

#include <fmt/core.h>

#include <algorithm>

#include "engine/ops.h"
#include "engine/quant_weight.h"
#include "engine/quant_map.h"
#include "model/lora.h"

namespace llm {

const MemoryItem& MemoryPlan::largest() const {
  return *std::max_element(items.begin(), items.end(),
                           [](const MemoryItem& a, const MemoryItem& b) { return a.bytes < b.bytes; });
}

MemoryPlan plan_memory(const MemoryPlanInput& in) {
  const LlamaConfig& m = in.model;
  const double C = m.hidden_size, F = m.intermediate_size, V = m.vocab_size, L = m.num_hidden_layers;
  const double H = m.num_attention_heads, kv = double(m.num_key_value_heads) * m.head_dim();
  const double P = static_cast<double>(m.num_parameters());
  const double N = static_cast<double>(in.micro_batch_size) * in.sequence_len;  // tokens
  const double ranks = static_cast<double>(std::max<int64_t>(1, in.ranks));
  const double dsize = in.bf16 ? 2 : 4;                    // activations, casts
  const double embed = V * C, lm_head = m.tie_word_embeddings ? 0 : static_cast<double>(m.head_rows()) * C;
  const double per_layer = (P - embed - lm_head - C) / L;  // the final norm is the C

  // An adapter run trains T parameters (the pairs, all matrices, and any modules_to_save); the
  // frozen base sits in the compute dtype, its block linears in NF4 under qlora or int8 under
  // load_in_8bit (plus, while each quantised linear runs, its weight dequantised into a scratch tensor).
  const bool adapter = in.trainable_parameters > 0;
  const double T = adapter ? static_cast<double>(in.trainable_parameters) : P;
  // The blocks whose frozen weights exist: replicated copies share them (PEFT's layer_replication).
  const double base_layers = in.base_layers > 0 ? static_cast<double>(in.base_layers) : L;
  double linears = 0, quant = 0, largest_linear = 0, linear_sides = 0, short_side = 0;
  for (int k = 0; k < kNumLinear; k++) {
    const Shape shape = linear_shape(m, k);
    linears += base_layers * shape[0] * shape[1];
    linear_sides += L * (shape[0] + shape[1]);
    quant += base_layers * static_cast<double>(quant_nbytes(in.quant_format, shape[0], shape[1], in.nf4_double_quant));
    if (shape[0] * shape[1] > largest_linear) short_side = std::min(shape[0], shape[1]);
    largest_linear = std::max(largest_linear, static_cast<double>(shape[0] * shape[1]));
  }
  const double frozen_dense = static_cast<double>(in.frozen_parameters) - (in.quant_linears ? linears : 0);
  const double frozen_whole = adapter ? dsize * frozen_dense + (in.quant_linears ? quant : 0) : 0;
  // One dequantised weight for its GEMM; DoRA adds its weight norm's f32 W, B A and their sum.
  const double weight_scratch = (in.quant_linears ? dsize * largest_linear : 0) + (in.dora ? 3 * 4 * largest_linear : 0);

  // 8-bit (or torchao's 4-bit) state quantises every matrix (kMin8bitSize elements and more) but the
  // token embedding (the Trainer's nn.Embedding override; torchao's quantises it too when it is
  // whole blocks, as the block linears of real shapes are); the norms stay f32.
  const bool embedding_8bit = in.optimizer_torchao.has_value() && static_cast<int64_t>(embed) % kQuantBlock == 0;
  const double own_embedding = embedding_8bit ? 0 : embed;
  const double matrices = adapter ? T - (in.trains_embedding ? own_embedding : 0) : P - (2 * L + 1) * C - own_embedding;
  const double moments = in.optimizer_moments;
  const double code_bytes = in.optimizer_torchao == TorchaoCodes::dynamic_4bit ? 0.5 : 1.0;
  double optimizer = moments * (in.optimizer_8bit || in.optimizer_torchao
                                    ? code_bytes * matrices + 4 * std::ceil(matrices / kQuantBlock) + 4 * (T - matrices)
                                    : (in.bf16_weights ? 2 : 4) * T);
  // Adafactor: a value per row and per column of each matrix (an adapter's pair has about its base
  // linear's rows and columns), one per element of the rest. CAME: the same, the instability's per
  // row and column of each matrix too, and a first moment of every element.
  if (in.optimizer_factored) {
    const double matrix_sides = linear_sides + (adapter ? 0 : (V + C) * (m.tie_word_embeddings ? 1 : 2));
    optimizer = 4 * (matrix_sides + T - (adapter ? T : P - (2 * L + 1) * C));
    if (in.optimizer_came) optimizer += 4 * (matrix_sides + T);
  }
  // Muon: f32 momentum of each orthogonalised matrix (an adapter's pairs, or every block linear),
  // f32 m and v of the embedding and lm_head trained (an adapter's modules_to_save: a second 4
  // bytes beside the 4 that T counts), nothing for the vectors, which it leaves out.
  const double saved_heads = (in.trains_embedding ? embed : 0) + (in.frozen_lm_head ? 0 : lm_head);
  if (in.optimizer_muon) optimizer = adapter ? 4 * T + 4 * saved_heads : 4 * linears + 8 * (embed + lm_head);
  if (in.optimizer_state_bytes > 0) optimizer = in.optimizer_state_bytes;
  // ZeRO counts only with several ranks. Stage 1 shards the optimizer state and the f32 master
  // weights; 2 (and 3) free each gradient bucket once reduced; 3 shards the weights themselves:
  // trained ones (zero3), or an adapter run's frozen base (frozen_zero3), whose trained
  // parameters are then sharded as ZeRO-2 shards them.
  const bool sharded = in.zero_stage >= 1 && in.ranks > 1, zero2 = in.zero_stage >= 2 && in.ranks > 1;
  const bool zero3 = in.zero_stage == 3 && in.ranks > 1 && !adapter;
  const bool frozen_zero3 = in.zero_stage == 3 && in.ranks > 1 && adapter;
  if (sharded) optimizer /= ranks;
  // The stage what trains is sharded at, for the table.
  const int64_t stage = frozen_zero3 ? 2 : in.zero_stage;
  const int64_t every = in.recompute_every_n_layers;
  const double segments = every > 0 ? std::ceil(L / every) : 0;
  const double in_segment = every > 0 ? std::min<double>(every, L) : 0;
  // ZeRO-3's units (engine/weight_units.h): tied, unit 0 (the embedding, which is also lm_head,
  // and the final norm) stays whole from the forward's start to the end of backward. Untied, the
  // embedding is whole for its lookup and at the end of backward, the head (final norm and
  // lm_head) from the loss to the start of backward: one of the two end units at a time. Of the
  // blocks, one at a time (a recompute segment's while it re-runs). Trained, their gradients are
  // as whole.
  const bool split = lm_head > 0;
  const double head_unit = embed + lm_head + C, block_units = (every > 0 ? in_segment : 1) * per_layer;
  const double unit0_whole = split ? 0 : head_unit;
  const double head_end = split ? lm_head + C : 0, embed_end = split ? embed : 0;
  const double end_units = std::max(head_end, embed_end);
  // Prefetch gathers one block ahead, without gradients yet: in forward the next block while one
  // computes; in backward the next block (or the previous segment's first) while one block (or a
  // segment) is whole. The most blocks gathered at once, of either pass:
  const bool more_blocks = L > 1, more_segments = every > 0 && segments > 1;
  const double gathered_blocks =
      std::max(1.0 + (in.forward_prefetch && more_blocks ? 1 : 0),
               (every > 0 ? in_segment : 1) + (in.backward_prefetch && (every > 0 ? more_segments : more_blocks) ? 1 : 0));
  // Frozen: this rank's slices (in host memory when offloaded: not the device's, unless the
  // device is the host) and the gathered units: tied, unit 0 less what trains whole; untied, the
  // larger end unit less what of it trains whole (the embedding or lm_head, modules_to_save).
  const double trained_whole = P - static_cast<double>(in.frozen_parameters);
  const double lm_head_trains = in.frozen_lm_head ? 0 : lm_head, embed_trains = trained_whole - lm_head_trains;
  const double frozen_head = dsize * (split ? std::max(embed - embed_trains, C + lm_head - lm_head_trains)
                                            : head_unit - trained_whole);
  const double frozen_block = in.quant_linears ? dsize * 2 * C + quant / L : dsize * per_layer;
  const double frozen_slices = in.offload_params && !in.on_cpu ? 0 : frozen_whole / ranks;
  const double frozen = frozen_zero3 ? frozen_slices + frozen_head + gathered_blocks * frozen_block : frozen_whole;
  // f32 trained weights with gradients at once (ZeRO-3: at most one end unit with a block's).
  const double whole = zero3 ? unit0_whole + end_units + block_units : T;
  // Buckets being reduced: two in flight under ZeRO-2 and 3 (launching one settles the earlier);
  // a bucket holds at least one parameter (the embedding is the largest); ZeRO-3's are its units,
  // at worst unit 0 or an end unit with a block.
  const double in_flight = std::min(4 * T, zero3 ? 4 * (unit0_whole + end_units + per_layer)
                                                 : 2 * 4 * std::max(in.bucket_cap_mb * 1048576.0 / 4, embed));

  // Activations backward keeps per token of one layer (engine/ops save these): the layer input,
  // both norm outputs, q, k, v after RoPE, the attention output, the residual after attention,
  // gate, up and their SwiGLU product (6 C + 2 kv + 3 F), and the norms' rstd and the tiled
  // attention's logsumexp (f32). Eager attention keeps its probabilities, H x S per token.
  double layer = dsize * (6 * C + 2 * kv + 3 * F) + 4 * (2 + H);
  if (in.attention == AttentionKind::eager) layer += dsize * H * in.sequence_len;
  // QAT: each distinct linear input also fake-quantised, both kept (the block input's norm, the
  // attention output, the MLP's norm, the SwiGLU product: 3 C + F), and lm_head's input (below);
  // copies in place of the inputs add only the attention output's, which attention keeps too.
  using QatInputs = MemoryPlanInput::QatInputs;
  const double qat_beside = in.qat_inputs == QatInputs::beside ? 1 : 0;
  layer += qat_beside * dsize * (3 * C + F) + (in.qat_inputs == QatInputs::in_place ? dsize * C : 0);
  // fp8: each block linear keeps the cast of its own input (q, k and v one each of the same norm).
  if (in.fp8) layer += dsize * (6 * C + F);
  // Kept through the whole forward: every layer's activations, or only each segment's input;
  // plus the final norm's input. A recomputed segment's activations come back in backward.
  // (Offloaded, the segment inputs wait in host memory: one at a time on the device, in backward.)
  const double final_norm_kept = N * dsize * C * (1 + (in.qat_head ? qat_beside : 0));
  const double kept =
      N * (every > 0 ? (in.offload_checkpoints ? 1 : segments) * dsize * C : L * layer) + final_norm_kept;
  const double recomputed = N * in_segment * layer;
  // One layer's backward temporaries at their most: d(product), d(gate) and d(up) in SwiGLU's
  // backward, less the product itself (and under QAT its fake-quantised copy), which down_proj's
  // backward has released by then; d(h) and d(x).
  const double temporaries = N * dsize * (2 * F + 2 * C - qat_beside * F);
  // ... or, a quantised base's, d(gate) and d(up) beside the weight that gate's or up's backward
  // dequantises (DoRA: its weight norm's scratch).
  const double bwd_temporaries = std::max(temporaries, N * dsize * 2 * F + weight_scratch);

  // ZeRO-1 to 3 of every parameter: the model computes with the compute copy, in the compute
  // dtype (bf16 on a GPU), re-cast from the master slices after each step and gathered in it
  // (engine/sharded_adamw.h); its gradients stay f32. Otherwise (unsharded, or an adapter run's
  // trainable parameters) the weights are f32 and, in bf16, cast per use.
  const bool compute_copies = sharded && !adapter;
  const double wsize = in.bf16_weights ? 2 : compute_copies ? dsize : 4;
  // bf16 casts per use: each weight cast per forward and the cast kept for backward (the
  // embedding only as lm_head: its lookup rounds the rows it gathers, engine/ops/embedding.cpp):
  // every layer's, or with recompute only one segment's at a time. An adapter run casts only
  // what trains; its frozen base is stored in bf16 already.
  const double lm_cast = lm_head > 0 ? lm_head : embed;
  // QAT's fake-quantised weights are made and kept the same way: the block linears of every layer
  // (or one segment's) and lm_head; fp8's casts of the block linears too.
  const double cast_layers = every > 0 ? in_segment : L;
  const double block_copies = in.qat_weights > 0 ? in.qat_weights : in.fp8 ? 1 : 0;
  const double qat_blocks = block_copies * dsize * cast_layers * linears / base_layers;
  const double qat_head = in.qat_head ? in.qat_weights * dsize * V * C : 0;
  // The bytes of the per-use casts of `elements` weights. bfloat16 on the CPU casts the other way,
  // bf16 weights to f32 (its lookup widens the rows).
  const auto cast_bytes = [&](double elements) {
    return in.bf16_weights ? (in.bf16 ? 0 : 4 * elements) : !in.bf16 || compute_copies ? 0 : 2 * elements;
  };
  // lm_head's cast (and QAT copy) lives only while the loss runs in forward: the fused loss keeps
  // its gradients, not its operands. Backward sees the blocks' casts alone.
  const bool adapter_casts = adapter && !in.bf16_weights;
  const double head_casts = qat_head + (adapter_casts ? 0 : cast_bytes(lm_cast));
  const double block_casts = qat_blocks + cast_bytes(adapter_casts ? T : cast_layers * per_layer);
  const double casts = block_casts + head_casts;
  // linear_cross_entropy: a chunk of logits and its gradient during forward, then d(hidden) and
  // d(lm_head) kept until backward, the latter in f32 whatever the compute dtype (a trained
  // lm_head's gradient is f32: engine/ops/head_weight.h).
  const double chunk = std::min(N, static_cast<double>(default_cross_entropy_chunk_rows(m.vocab_size)));
  const bool head_gradient = !in.frozen_lm_head || in.head_token_rows;
  const double head_rows = static_cast<double>(m.head_rows());  // V, or a classifier's labels (its scores)
  const double chunk_bytes = 2 * chunk * head_rows * dsize,
               loss_kept = dsize * N * C + (head_gradient ? 4 * head_rows * C : 0) + (in.head_token_rows ? 4 * V * C : 0);
  // ZeRO-2 drops each full gradient once its bucket is packed: about two buckets' worth live at
  // once, unless accumulation keeps them whole across micro-batches. ZeRO-3 reduces every
  // micro-batch: the gradients of the units that are whole, never more.
  // Layer-wise updates drop each gradient as it completes: a block's weights, each used by one
  // node, hold theirs one at a time (the MLP's matrices the largest), a recompute segment's all
  // at once (its leaves complete with its node); the embedding, tied, holds lm_head's from the
  // loss's backward to the end; untied, lm_head's and the embedding's come and go alone.
  const bool layerwise = in.layerwise_updates;
  const double block_grads = every > 0 ? std::min<double>(every, L) * per_layer : F * C;
  const double one_at_a_time = 4 * (lm_head > 0 ? std::max({embed, lm_head, block_grads}) : embed + block_grads);
  const bool whole_grads = !layerwise && (!zero2 || (!zero3 && in.gradient_accumulation_steps > 1));
  // An update in backward holds its scratch beside the gradient it takes.
  const double update_scratch = layerwise ? in.optimizer_update_scratch : 0;
  const double grads = layerwise ? one_at_a_time : zero3 ? 4 * whole : whole_grads ? 4 * T : in_flight;
  const double grads_first = head_gradient ? 4 * V * C : 0;  // lm_head's, the first to arrive
  // Data parallel: flat f32 buckets holding every gradient (ZeRO-2 and 3: the ones in flight);
  // ZeRO-1 to 3 add this rank's reduced slices.
  const double slices = sharded ? 4 * T / ranks : 0;
  const double flat_buckets = in.ranks <= 1 ? 0 : zero2 ? 0 : 4 * T;  // alive the whole step
  const double buckets = flat_buckets + slices + (zero2 ? in_flight : 0);
  // The trained weights the model computes with: unsharded in f32, also what AdamW updates (in
  // bf16 the master below, cast per use); sharded, the compute copy (wsize), the master weights
  // AdamW updates being this rank's slice only. ZeRO-3: unit 0 when tied and the gathered blocks
  // here; an untied end unit only at the moments it is whole (below).
  const double compute_weights =
      sharded || !in.bf16 || in.bf16_weights ? wsize * (zero3 ? unit0_whole + gathered_blocks * per_layer : T) : 0;
  const double head_whole = zero3 ? wsize * head_end : 0, embed_whole = zero3 ? wsize * embed_end : 0;
  const double master = sharded ? 4 * T / ranks : in.bf16 && !in.bf16_weights ? 4 * T : 0;

  MemoryPlan plan;
  const std::string per_rank = in.ranks > 1 ? ", on every rank" : "";
  const std::string trained = adapter ? "the trainable parameters" : "every parameter";
  std::string weights_how;
  const char* prefetched = gathered_blocks > (every > 0 ? in_segment : 1) ? ", one prefetched" : "";
  const char* ends = split ? "the embedding or the norm/lm_head unit" : "the embedding/norm unit (also lm_head)";
  if (adapter) {
    weights_how = fmt::format("frozen base in {}{}{}", in.bf16 ? "bf16" : "f32",
                              frozen_zero3 ? fmt::format(" (ZeRO-3: this rank's 1/{} slice{}, {} and {:.0f} "
                                                         "block(s) gathered{})", in.ranks,
                                                         frozen_slices > 0 ? "" : " in host memory", ends,
                                                         gathered_blocks, prefetched)
                                           : "",
                              in.quant_linears ? fmt::format(", its block linears in {} ({:.2f} bits a weight, "
                                                           "one dequantised at a time)",
                                                           quant_format_name(in.quant_format), 8 * quant / linears)
                                             : "");
    weights_how += in.bf16 ? " + bf16 casts of the adapters" : " + f32 adapters";
  } else {
    const char* dtype = wsize == 2 ? "bf16" : "f32";
    weights_how = zero3 ? fmt::format("{}, {} and {:.0f} block(s) gathered at once (ZeRO-3{})", dtype, ends,
                                      gathered_blocks, prefetched)
                        : dtype + (", every parameter" + per_rank);
    weights_how += sharded ? " (the compute copy)" : in.bf16_weights ? " (bfloat16: no master copy)" : " (also the master copy)";
    if (in.bf16_weights && !in.bf16)
      weights_how += every > 0 ? " + f32 casts of lm_head and one segment's weights"
                               : " + f32 casts of every weight, made in forward, kept for backward";
    if (in.bf16 && !compute_copies && !in.bf16_weights) {
      const std::string cast_how = every > 0 ? "bf16 casts of the embedding, lm_head and one segment's weights"
                                             : "bf16 casts of every weight, made in forward, kept for backward";
      weights_how = compute_weights > 0 ? weights_how + " + " + cast_how : cast_how;
    }
  }
  if (in.qat_weights > 0) weights_how += " + QAT's fake-quantised linear weights (kept for backward)";
  if (in.fp8) weights_how += " + fp8 casts of the block linears' weights (kept for backward)";
  if (in.pruning_masks > 0) weights_how += " + u8 sparsity masks";
  plan.items = {
      {"weights", compute_weights + wsize * (zero3 ? end_units : 0) + casts + (adapter ? frozen + weight_scratch : 0) +
                      in.pruning_masks,
       weights_how},
      {"master weights", master,
       sharded ? fmt::format("f32, this rank's 1/{} slice (ZeRO-{})", in.ranks, stage)
               : in.bf16_weights ? "none: bfloat16 updates the bf16 weights"
               : in.bf16 ? "f32, " + trained + per_rank : "none apart: f32 training updates the weights"},
      {"gradients", grads,
       zero3         ? "f32, the units gathered at once (ZeRO-3)"
       : layerwise   ? std::string("f32, each dropped once its update in backward is made: the largest alone") +
                           (lm_head > 0 ? "" : " beside the tied embedding's, held through backward")
       : whole_grads ? "f32, " + trained + per_rank
                     : "f32, the parameters of the buckets in flight (ZeRO-2)"},
      {"optimizer state", optimizer,
       std::string(in.optimizer_state_bytes > 0 ? in.optimizer_state_note
                   : in.optimizer_came       ? "CAME: f32 first moment, means per row and column of each matrix"
                   : in.optimizer_factored ? "Adafactor: f32 means per row and column of each matrix"
                   : in.optimizer_muon  ? "Muon: f32 momentum of the matrices, f32 m and v of the embeddings"
                   : in.optimizer_torch_optim && in.optimizer_8bit ? "8-bit RMSprop (bitsandbytes): u8 square_avg + f32 absmax per " +
                                                                        std::to_string(kQuantBlock)
                   : in.optimizer_torch_optim ? fmt::format("torch.optim: {} f32 state tensor(s) a parameter", in.optimizer_moments)
                   : in.optimizer_torchao ? "torchao " + torchao_codes_name(*in.optimizer_torchao) + " AdamW: " +
                                                (*in.optimizer_torchao == TorchaoCodes::dynamic_8bit ? "u8"
                                                 : torchao_codes_name(*in.optimizer_torchao)) +
                                                " m and v + f32 scale per " + std::to_string(kQuantBlock)
                   : in.optimizer_schedule_free ? (in.optimizer_moments == 1 ? "Schedule-Free SGD: f32 z"
                                                                             : "Schedule-Free: f32 z and v")
                   : in.optimizer_moments == 3 ? (in.optimizer_8bit ? "8-bit AdEMAMix: u8 m1, m2 and nu + f32 absmax per " +
                                                                        std::to_string(kQuantBlock)
                                                                  : "AdEMAMix: f32 m1, m2 and nu")
                   : in.optimizer_moments == 1 ? (in.optimizer_8bit ? "8-bit Lion: u8 momentum + f32 absmax per " +
                                                                        std::to_string(kQuantBlock)
                                                                  : "Lion: f32 momentum")
                   : in.optimizer_8bit ? "8-bit AdamW: u8 m and v + f32 absmax per " + std::to_string(kQuantBlock)
                   : in.bf16_weights   ? "AdamW: bf16 m and v"
                                       : "AdamW (or ADOPT): f32 m and v") +
           (sharded ? fmt::format(", ZeRO-{} shard of {}", stage, in.ranks) : "")},
      {"activations", kept + (every > 0 ? recomputed : 0) + temporaries,
       fmt::format("{:.0f} tokens x {}{}", N,
                   every > 0 ? fmt::format("{:.0f} segment inputs, one segment of {:.0f} layers recomputed",
                                           segments, in_segment)
                             : fmt::format("{:.0f} layers", L),
                   in.attention == AttentionKind::eager ? ", eager attention probabilities" : "")},
      {"logits/loss workspace", chunk_bytes + loss_kept,
       fmt::format("chunks of {:.0f} rows x {:.0f} {}, d(hidden){}{}", chunk, head_rows, m.num_labels > 0 ? "labels" : "vocab",
                   head_gradient ? ", d(lm_head)" : "",
                   in.head_token_rows ? ", lm_head with its trained token rows" : "")},
      {"communication buckets", buckets,
       in.ranks > 1 ? (zero2     ? fmt::format("f32: two buckets in flight + this rank's slices (ZeRO-{})", stage)
                       : sharded ? "f32 flat buckets + ZeRO-1 slices"
                                 : "f32 flat buckets (all-reduce)")
                    : "none (one rank)"},
  };
  if (in.optimizer_update_scratch > 0)
    plan.items.push_back({"optimizer scratch", in.optimizer_update_scratch,
                          "f32, during an update: APOLLO's scaled gradient (or Q-GaLore's dequantised basis) of the largest "
                          "projected matrix"});
  // The peak is the largest of three moments. Gradients outlive the step's micro-batches when
  // it has several. ZeRO-2 and 3's buckets in flight exist only towards the end of each bucket's
  // backward, and hold what they packed of the gradients, which are dropped. The frozen base of an
  // adapter run stays throughout.
  const double persistent = compute_weights + master + optimizer + flat_buckets + slices + frozen;
  const double held_grads = whole_grads && in.gradient_accumulation_steps > 1 ? grads : 0;
  // Layer-wise: the tied embedding's gradient beside the last block's down_proj's (a segment's
  // other weights have none yet), or untied lm_head's, then down_proj's, alone.
  const double grads_at_first =
      layerwise ? 4 * (lm_head > 0 ? std::max(lm_head, F * C) : embed + F * C) + update_scratch
                : std::min(grads, grads_first);
  // The loss in forward: its input (the final norm's output, and a fake-quantised copy made in
  // its place) beside a chunk of logits and the gradients it forms. ZeRO-3 has let the blocks go.
  const double loss_input = dsize * N * C * (in.qat_head && in.qat_inputs == QatInputs::in_place ? 2 : 1);
  const double blocks_gathered = zero3          ? wsize * gathered_blocks * per_layer
                                 : frozen_zero3 ? gathered_blocks * frozen_block
                                                : 0;
  const double fwd = persistent - blocks_gathered + head_whole + casts + kept + loss_input + chunk_bytes + loss_kept +
                     held_grads;
  // ZeRO-3 with the head a unit of its own (untied): two moments, never one. The loss's backward
  // holds the head whole and d(lm_head) beside its scaled copy, lm_head's gradient; then the head's
  // bucket is packed and launched, its weights and gradients freed, before the last block's
  // backward (or its segment's re-run) starts, with the bucket and incoming slice in flight.
  // Otherwise two moments: the loss's node, whose f32 d(lm_head) becomes lm_head's gradient (the
  // same buffer; added into held gradients), and the last block's MLP backward, when the loss's
  // gradients and the final norm's input are gone (d(hidden) became the block's d(x), one of the
  // temporaries).
  const double start_bwd =
      zero3 && split ? std::max(persistent + head_whole + casts + kept + loss_kept + grads_at_first,
                                persistent + casts + kept + dsize * N * C + recomputed + temporaries +
                                    4 * head_end * (1 + 1 / ranks))
                     : std::max(persistent + head_whole + block_casts + kept + loss_kept + held_grads,
                                persistent + head_whole + block_casts + kept - final_norm_kept + recomputed +
                                    grads_at_first + bwd_temporaries + held_grads);
  // Untied under ZeRO-3, backward ends with the embedding's own unit once block 0's backward (its
  // activations and temporaries, block_bwd below) is done: its weights and gradient beside block
  // 0's bucket in flight, then packed into its own bucket.
  // Otherwise the larger of block 0's MLP backward, its gradients of down_proj formed but not yet
  // of its other weights, nor (untied) the embedding's; and the embedding's backward, last, with
  // every gradient and block 0's d(x) alone.
  const double not_yet = whole_grads && held_grads == 0 && !adapter ? 4 * (per_layer - F * C + (split ? embed : 0))
                         : layerwise ? 4 * (block_grads - F * C)
                                     : 0;
  const double end_grads = (zero2 ? std::max(grads, in_flight) : grads) + update_scratch;
  const double end_bwd =
      zero3 && split ? persistent + casts + embed_whole + 4 * embed + 4 * std::max(per_layer * (1 + 1 / ranks), embed)
                     : persistent + embed_whole + block_casts +
                           std::max(end_grads - not_yet + recomputed + bwd_temporaries, end_grads + dsize * N * C);
  // ZeRO-3, as a block's backward ends (its own activations freed): the block's weights (in
  // `persistent`) and gradients, packed into its flat bucket while the previous block's bucket
  // and incoming slice are still in flight. Under recompute the previous bucket stays in flight
  // through the whole re-run (it settles when this block's launches, after the recompute node),
  // so the re-run's backward temporaries are there too. Tied, unit 0's gradients (lm_head's, the
  // first to arrive) stay whole to the end of backward; untied, the head's were reduced before
  // the blocks' backward, its bucket perhaps still in flight as the last block's ends. The loss's
  // gradients and the final norm's input are gone by then (as at the last block's MLP, above).
  // Before that, with the same bucket in flight, the block's MLP backward: its segment's re-run
  // (without recompute: every activation but the block above's, freed before a bucket is in
  // flight), the temporaries and down_proj's gradient alone of the block's.
  const double bwd_base = persistent + block_casts + kept - final_norm_kept + (split ? 0 : grads_at_first) +
                          4 * std::max(per_layer, head_end) * (1 + 1 / ranks);
  const double block_bwd =
      zero3 ? bwd_base + std::max(recomputed - N * layer + (every > 0 ? temporaries : 0) + 4 * block_units,
                                  (every > 0 ? recomputed : -N * layer) + bwd_temporaries + 4 * F * C)
            : 0;
  // ZeRO-2 with whole gradients (accumulation): the first bucket packs into its flat buffer before
  // its gradients go, with every other gradient still whole.
  const double one_bucket = std::min(4 * T, 4 * std::max(in.bucket_cap_mb * 1048576.0 / 4, embed));
  const double first_pack = zero2 && !zero3 && whole_grads ? persistent + block_casts + grads + one_bucket : 0;
  // Start-up. ZeRO-3 never holds the whole model: each weight is drawn or read alone on the host
  // and each rank keeps its slices (engine/sharded_weights.h), so the device sees only the
  // shards, and the host one whole f32 weight at a time (the embedding or lm_head is the
  // largest), which counts where the host is the device (the CPU). ZeRO-1 and 2 build the whole
  // f32 model on every rank before the optimizer takes its slices (then, in bf16, cast one weight
  // at a time to the compute copy: the first cast beside the whole f32 model at most). An adapter
  // run builds its whole base in f32 before casting or quantising it: on the host for qlora (a GPU
  // then sees only the codes), else on the device; where the host is the device (the CPU) the f32
  // model and the adapters count. Under ZeRO-3 its frozen base starts as trained weights do
  // (engine/frozen_shards.h): the slices, the adapters and one f32 weight whole on the host
  // (quantised or cast beside it). Checkpoints and the final export stream (train/
  // trainer_checkpoint.cpp): under ZeRO rank 0's host holds one gathered bucket (ZeRO-3: one
  // unit) of the f32 master or of one AdamW moment at a time, written and dropped before the
  // next, so a save raises host memory by the largest bucket in f32 at most (with 8-bit AdamW,
  // plus one weight's u8 codes), which each save logs; without ZeRO a save copies one tensor at a
  // time to the host. Where the host is the device that stays under what a step adds to the
  // resident state (a step gathers a unit too, beside its activations), so it is not added here.
  const double largest_weight = std::max({embed, lm_head, largest_linear});
  const double start_up = zero3 ? master + optimizer + slices + (in.on_cpu ? 4 * largest_weight : 0)
                          : compute_copies ? 4 * P + (wsize < 4 ? wsize * largest_weight : 0) + master + optimizer +
                                                 flat_buckets + slices
                          : frozen_zero3 && in.on_cpu ? frozen_slices + 4 * T + 4 * largest_weight
                          : adapter && in.on_cpu ? 4 * P + 4 * T
                                                 : 0;
  const double end_gather = frozen_zero3 && in.merge_lora ? persistent - frozen + frozen_slices + frozen_whole : 0;
  // Evaluation, between steps: a forward without gradients of eval_batch_size rows keeps nothing
  // for backward, so one block's tensors live at a time: as its MLP runs, the block's input, its
  // norm, q, k, v, the attention output, the residual sum and its norm (a block's locals stay until
  // it returns), gate, up and their product; as attention runs, eager's f32 probabilities. (The
  // embedding's output goes once the first block has read it: LlamaModel::segment_forward takes
  // it by value.) Then the head: the hidden states, their norm and rows, a chunk of logits and its
  // softmax. Beside them (bf16, weights cast per use) one weight's cast. It can be the peak only
  // when the eval batch is the larger.
  const double eval_tokens = static_cast<double>(std::max(in.eval_micro_batch_size, in.micro_batch_size)) *
                             in.sequence_len;
  const double eval_chunk = std::min(eval_tokens, static_cast<double>(default_cross_entropy_chunk_rows(m.vocab_size)));
  const double eval_block = std::max(dsize * (6 * C + 2 * kv + 3 * F),
                                     dsize * (4 * C + 2 * kv) +
                                         (in.attention == AttentionKind::eager ? 4 * H * in.sequence_len : 0));
  const double eval_head = eval_tokens * dsize * 3 * C + 2 * eval_chunk * static_cast<double>(m.head_rows()) * dsize;
  const double eval = in.eval_micro_batch_size > in.micro_batch_size
                          ? persistent + head_whole + embed_whole + std::max(eval_tokens * eval_block, eval_head) +
                                (in.bf16 != in.bf16_weights && !compute_copies ? dsize * std::max(largest_linear, lm_cast)
                                                                               : 0) +
                                weight_scratch
                          : 0;
  // Muon's step: beside the state and every gradient, the largest matrix's Newton-Schulz scratch
  // (engine/muon.cpp): the Nesterov input, X, B X and X transposed back in f32 and a bf16 copy for
  // rounding, and A, c A, B (the short side squared) with theirs; on a GPU X, B X, A, c A and B
  // are bf16 tensors instead. An adapter's pairs are small.
  const double muon_scratch = adapter ? 0
                              : in.bf16   ? 18 * largest_linear + 6 * short_side * short_side
                                          : 18 * largest_linear + 14 * short_side * short_side;
  const double muon_step = in.optimizer_muon ? persistent + grads + muon_scratch : 0;
  // Another optimizer's update scratch after backward (layer-wise: counted in backward above).
  const double update_step =
      !layerwise && in.optimizer_update_scratch > 0 ? persistent + grads + in.optimizer_update_scratch : 0;
  plan.peak_bytes =
      std::max({fwd, start_bwd, end_bwd, block_bwd, first_pack, start_up, end_gather, eval, muon_step, update_step});
  plan.peak_when = plan.peak_bytes == fwd          ? "the loss in forward"
                   : plan.peak_bytes == eval       ? "evaluation (eval_batch_size rows in one forward)"
                   : plan.peak_bytes == muon_step  ? "Muon's step (Newton-Schulz scratch beside the gradients)"
                   : plan.peak_bytes == update_step ? "the optimizer's step (its scratch beside the gradients)"
                   : plan.peak_bytes == start_bwd  ? "the start of backward"
                   : plan.peak_bytes == end_bwd    ? "the end of backward"
                   : plan.peak_bytes == block_bwd  ? "the end of a block's backward (ZeRO-3)"
                   : plan.peak_bytes == first_pack ? "the first bucket's packing (ZeRO-2, whole gradients)"
                   : plan.peak_bytes == end_gather ? "the end (merge_lora: the frozen base gathered whole)"
                   : zero3 || frozen_zero3         ? "start-up (one f32 weight whole beside the shards)"
                                                   : "start-up (the whole f32 model, then sharded)";
  return plan;
}

std::string format_memory_plan(const MemoryPlan& plan, double available, const std::string& what) {
  // GiB for real models, MiB for the small ones tests and the CPU train.
  const bool gib = plan.peak_bytes >= 1024.0 * 1024 * 1024;
  auto size = [gib](double bytes) {
    return fmt::format("{:>9.2f} {}", bytes / (gib ? 1073741824.0 : 1048576.0), gib ? "GiB" : "MiB");
  };
  std::string out;
  double sum = 0;
  for (const MemoryItem& item : plan.items) {
    out += fmt::format("  {:<22} {}  {}\n", item.name, size(item.bytes), item.how);
    sum += item.bytes;
  }
  out += fmt::format("  {:<22} {}  at {} (the items together: {})\n", "peak per rank", size(plan.peak_bytes),
                     plan.peak_when, size(sum));
  if (available > 0)
    out += fmt::format("  {} {:.2f} GiB of {:.2f} GiB {}: largest {}\n",
                       plan.peak_bytes <= available ? "fits:" : "does not fit:", plan.peak_bytes / 1073741824.0,
                       available / 1073741824.0, what, plan.largest().name);
  return out;
}

}  // namespace llm
