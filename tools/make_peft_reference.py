#!/usr/bin/env python3
"""Writes test/data/peft_reference, PEFT's own LoRA on transformers' Llama, for test_lora_peft.

Base: test/data/hf_reference/untied_gqa2. LoraConfig r 4, alpha 8, all seven linear layers,
lm_head in modules_to_save; A and B random (init_lora_weights=False), the saved lm_head moved
off the base. Writes adapter/ (save_pretrained), merged/ (merge_and_unload().save_pretrained),
reference.safetensors (logits; grad.<our name> of each trained tensor) and reference.json.
--dora: the same with use_dora (into test/data/peft_reference/dora), the magnitudes moved off
their initial norms too, and init.<our name> of each magnitude as PEFT starts it (B zero).
--layers 1: the same with layers_to_transform [1] (into test/data/peft_reference/layers): block 1
alone gets adapters.
--pattern REGEX: the same with target_modules the one regular expression REGEX (into
test/data/peft_reference/pattern): the linears whose whole name it matches get adapters.
--rank-patterns: the same with PEFT's rank_pattern and alpha_pattern (Axolotl's lora_rank_pattern,
lora_alpha_pattern) below, two patterns naming one module in each, so their order counts (into
test/data/peft_reference/rank_patterns).
Needs torch, transformers, peft:
  tools/make_peft_reference.py [--out DIR] [--dora] [--layers N ...] [--pattern REGEX] [--rank-patterns]
(test_lora_peft's pattern: 'model\.layers\.(0\.self_attn\.(q|v)|1\.mlp\.(up|down))_proj')
"""
import argparse, json, os
import peft, torch, transformers
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/peft_reference")
ap.add_argument("--base", default="test/data/hf_reference/untied_gqa2")
ap.add_argument("--dora", action="store_true")
ap.add_argument("--layers", type=int, nargs="+")
ap.add_argument("--pattern")
ap.add_argument("--rank-patterns", action="store_true")
a = ap.parse_args()
if a.out == ap.get_default("out") and (a.dora or a.layers or a.pattern or a.rank_patterns):
    a.out = os.path.join(a.out, "dora" if a.dora else "layers" if a.layers else "pattern" if a.pattern
                         else "rank_patterns")
# test_lora_peft's copy of these: the first key matching a module's name wins.
rank_pattern = {"model.layers.1.self_attn.q_proj": 2, "q_proj": 8, "down_proj": 6} if a.rank_patterns else {}
alpha_pattern = {r"(up|down)_proj": 3, r"layers\.0\..*": 16} if a.rank_patterns else {}
torch.manual_seed(0)


def load_base():
    return transformers.LlamaForCausalLM.from_pretrained(a.base, attn_implementation="eager",
                                                         dtype=torch.float32)


def ours(name):  # PEFT's name -> ours: no base_model.model., adapter name or wrapper
    name = name.replace("base_model.model.", "", 1).replace(".modules_to_save", "")
    return name.replace(".default", "").replace("lora_magnitude_vector.weight", "lora_magnitude_vector")


targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
tensors = {}
if a.dora:  # the magnitudes PEFT starts an adapter with: the base rows' norms
    fresh = peft.get_peft_model(load_base(), peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=targets, use_dora=True, task_type="CAUSAL_LM"))
    for name, t in fresh.named_parameters():
        if "lora_magnitude_vector" in name:
            tensors["init." + ours(name)] = t.detach().clone().contiguous()
model = peft.get_peft_model(load_base(), peft.LoraConfig(
    r=4, lora_alpha=8, lora_dropout=0.0, target_modules=a.pattern or targets, modules_to_save=["lm_head"],
    init_lora_weights=False, use_dora=a.dora, layers_to_transform=a.layers, rank_pattern=rank_pattern,
    alpha_pattern=alpha_pattern, task_type="CAUSAL_LM"))
with torch.no_grad():
    for name, t in model.named_parameters():
        if "modules_to_save" in name:
            t.add_(0.1 * torch.randn_like(t))
        if "lora_magnitude_vector" in name:
            t.mul_(1 + 0.2 * torch.randn_like(t))
ids = torch.tensor(json.load(open(os.path.join(a.base, "reference.json")))["ids"])
result = model(input_ids=ids, labels=ids)
result.loss.backward()
model.save_pretrained(os.path.join(a.out, "adapter"))
tensors["logits"] = result.logits.detach().contiguous()
for name, t in model.named_parameters():
    if t.requires_grad:
        tensors["grad." + ours(name)] = t.grad.contiguous()
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"loss": result.loss.item(), "torch": torch.__version__,
               "transformers": transformers.__version__, "peft": peft.__version__}, f, indent=1)
model.merge_and_unload().save_pretrained(os.path.join(a.out, "merged"))
print(a.out, "loss", result.loss.item(), "peft", peft.__version__)
