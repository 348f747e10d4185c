"""PEFT's layer replication beside LoRA (Axolotl's peft_layer_replication), the fixture case
make_hf_trajectory.py --add layer_replication computes:
  lora_replicated  LoRA on the deep model (4 blocks) with layer_replication [[0, 3], [1, 4]]: the
                   blocks become 0, 1, 2, 1, 2, 3, each copy sharing its original's frozen weights
                   and getting adapters of its own (PEFT's replicate_layers, clone_module with
                   share_weights)
It starts from the adapter PEFT initialised (OUT/lora_replicated_init, loaded through
lora_model_dir: A drawn from torch's generator)."""
import os

import peft
import torch

from make_hf_trajectory import LORA, load, train

REPLICATION = [[0, 3], [1, 4]]


def layer_replication_cases(out, rows):
    torch.manual_seed(8)
    model = peft.get_peft_model(load(out, "deep"), peft.LoraConfig(**LORA, layer_replication=REPLICATION))
    layers = model.base_model.model.model.layers
    assert len(layers) == 6 and layers[3].self_attn.q_proj.base_layer.weight is layers[1].self_attn.q_proj.base_layer.weight
    init = os.path.join(out, "lora_replicated_init")
    model.save_pretrained(init)
    os.remove(os.path.join(init, "README.md"))  # PEFT's model card: not read
    case = train(model, rows)
    case.update(model="deep", layer_replication=REPLICATION)
    return {"lora_replicated": case}
