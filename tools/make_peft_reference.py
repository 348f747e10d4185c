#!/usr/bin/env python3
"""Writes test/data/peft_reference, PEFT's own LoRA on transformers' Llama, for test_lora.

Base: test/data/hf_reference/untied_gqa2. LoraConfig r 4, alpha 8, all seven linear layers,
lm_head in modules_to_save; A and B random (init_lora_weights=False), the saved lm_head moved
off the base. Writes adapter/ (save_pretrained), merged/ (merge_and_unload().save_pretrained),
reference.safetensors (logits; grad.<our name> of each trained tensor) and reference.json.
Needs torch, transformers, peft:  tools/make_peft_reference.py [--out DIR]
"""
import argparse, json, os
import peft, torch, transformers
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/peft_reference")
ap.add_argument("--base", default="test/data/hf_reference/untied_gqa2")
a = ap.parse_args()
torch.manual_seed(0)
base = transformers.LlamaForCausalLM.from_pretrained(a.base, attn_implementation="eager",
                                                     dtype=torch.float32)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
model = peft.get_peft_model(base, peft.LoraConfig(
    r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, modules_to_save=["lm_head"],
    init_lora_weights=False, task_type="CAUSAL_LM"))
with torch.no_grad():
    for name, t in model.named_parameters():
        if "modules_to_save" in name:
            t.add_(0.1 * torch.randn_like(t))
ids = torch.tensor(json.load(open(os.path.join(a.base, "reference.json")))["ids"])
result = model(input_ids=ids, labels=ids)
result.loss.backward()
model.save_pretrained(os.path.join(a.out, "adapter"))
tensors = {"logits": result.logits.detach().contiguous()}
for name, t in model.named_parameters():
    if t.requires_grad:  # PEFT's name -> ours: no base_model.model., adapter name or wrapper
        ours = name.replace("base_model.model.", "", 1).replace(".modules_to_save", "")
        tensors["grad." + ours.replace(".default", "")] = t.grad.contiguous()
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"loss": result.loss.item(), "torch": torch.__version__,
               "transformers": transformers.__version__, "peft": peft.__version__}, f, indent=1)
model.merge_and_unload().save_pretrained(os.path.join(a.out, "merged"))
print(a.out, "loss", result.loss.item(), "peft", peft.__version__)
