"""Logits, loss and every parameter's gradient of one of test_hf's transformers models
(test/data/hf_reference, tools/make_hf_reference.py) after a change to it, for the fixtures that
hold llm_train's versions of such changes to transformers' (test/reference_inputs.h's
check_against_reference reads them). Imported by tools/make_qat_reference.py and
tools/make_fp8_reference.py.
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file


def write_model_reference(hf_dir, name, prepare, out_dir, out_name=None, **meta):
    """Loads hf_dir/name in f32 (eager attention), lets prepare(model) change it (and return what
    to record of the change), runs the reference's ids with labels, and writes
    out_dir/<out_name>.safetensors (logits, grad.<parameter>) and out_dir/<out_name>.json (loss,
    meta, what prepare returned, versions); out_name defaults to name. Returns the loss."""
    out_name = out_name or name
    directory = os.path.join(hf_dir, name)
    model = transformers.LlamaForCausalLM.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32)
    recorded = prepare(model) or {}
    with open(os.path.join(directory, "reference.json")) as f:
        ids = torch.tensor(json.load(f)["ids"])
    result = model(input_ids=ids, labels=ids)
    result.loss.backward()
    tensors = {"logits": result.logits.detach().contiguous()}
    for pname, p in model.named_parameters():
        tensors["grad." + pname] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(out_dir, out_name + ".safetensors"))
    with open(os.path.join(out_dir, out_name + ".json"), "w") as f:
        json.dump(dict(loss=result.loss.item(), **meta, **recorded, torch=torch.__version__,
                       transformers=transformers.__version__), f, indent=1)
    return result.loss.item()
