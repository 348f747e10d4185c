#!/usr/bin/env python3
"""Writes test/data/qlora_reference, QLoRA as transformers + bitsandbytes + PEFT run it, for test_qlora.

Base: a random transformers Llama written to DIR/base (hidden 64, mlp 128, GQA 2, 2 layers,
untied; bnb's CPU Linear4bit needs in_features a multiple of its 64-element block), loaded with BitsAndBytesConfig(load_in_4bit=True,
bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=float32) on
the CPU: every block's seven nn.Linear become bnb Linear4bit (embeddings, norms, lm_head stay
f32). PEFT LoraConfig r 4, alpha 8, all seven linear layers, A and B random
(init_lora_weights=False). One forward and backward in training mode on the reference ids. Writes adapter/
(save_pretrained), reference.safetensors (logits; grad.<our name> of each adapter tensor;
dequant.<our name> of each quantised weight, bnb's dequantize_4bit) and reference.json (ids,
loss, versions).
Needs torch, transformers, peft, bitsandbytes:  tools/make_qlora_reference.py [--out DIR]
"""
import argparse, json, os
import bitsandbytes as bnb, peft, torch, transformers
import bitsandbytes.functional as F
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/qlora_reference")
a = ap.parse_args()
torch.manual_seed(0)
config = transformers.LlamaConfig(vocab_size=48, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                  rms_norm_eps=1e-5, rope_theta=500000.0, initializer_range=0.2,
                                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
base_dir = os.path.join(a.out, "base")
transformers.LlamaForCausalLM(config).save_pretrained(base_dir)
ids = torch.randint(0, config.vocab_size, (2, 9))
quant = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                        bnb_4bit_use_double_quant=True,
                                        bnb_4bit_compute_dtype=torch.float32)
base = transformers.LlamaForCausalLM.from_pretrained(base_dir, attn_implementation="eager",
                                                     dtype=torch.float32, device_map="cpu",
                                                     quantization_config=quant)
dequant = {}
for name, module in base.named_modules():
    if isinstance(module, bnb.nn.Linear4bit):
        w = module.weight
        assert w.quant_state.nested and w.quant_state.quant_type == "nf4" and w.quant_state.blocksize == 64
        dequant["dequant." + name + ".weight"] = F.dequantize_4bit(w.data, w.quant_state).float().contiguous()
assert len(dequant) == 2 * 7, sorted(dequant)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
model = peft.get_peft_model(base, peft.LoraConfig(
    r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, init_lora_weights=False,
    task_type="CAUSAL_LM"))
# Training mode, as a QLoRA run: in eval mode with inputs that need no gradient, bnb's CPU
# Linear4bit repacks the weight for an AVX512-bf16 inference kernel with bf16 absmax. No
# dropout is configured, so train mode changes nothing else.
model.train()
result = model(input_ids=ids, labels=ids)
result.loss.backward()
model.save_pretrained(os.path.join(a.out, "adapter"))
os.remove(os.path.join(a.out, "adapter", "README.md"))  # PEFT's model card: nothing reads it
tensors = {"logits": result.logits.detach().float().contiguous(), **dequant}
for name, t in model.named_parameters():
    if t.requires_grad:  # PEFT's name -> ours: no base_model.model. or adapter name
        ours = name.replace("base_model.model.", "", 1).replace(".default", "")
        tensors["grad." + ours] = t.grad.float().contiguous()
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"ids": ids.tolist(), "loss": result.loss.item(), "torch": torch.__version__, "transformers": transformers.__version__,
               "peft": peft.__version__, "bitsandbytes": bnb.__version__}, f, indent=1)
print(a.out, "loss", result.loss.item(), "tensors", len(tensors), "bitsandbytes", bnb.__version__)
