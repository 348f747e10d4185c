"""PEFT's LoRA inits from the base weight (Axolotl's peft_init_lora_weights), the fixture cases
make_hf_trajectory.py --add lora_inits computes, each on full_untied's base with the fixture's
LoRA settings:
  lora_pissa       init_lora_weights pissa: A and B from the weight's 8 principal singular
                   values and vectors (torch.linalg.svd), the base keeping the residual
  lora_pissa_dora  the same with DoRA: its magnitudes from the residual plus B A
  lora_olora       init_lora_weights olora: A and B from the weight's QR (torch.linalg.qr)
No initial adapter is saved: these inits draw nothing, so llm_train starts from its own
decomposition of the same weights (its signs may differ per singular pair; the trajectory does not)."""
import peft

from make_hf_trajectory import LORA, load, train

INITS = {"lora_pissa": ("pissa", False), "lora_pissa_dora": ("pissa", True), "lora_olora": ("olora", False)}


def lora_init_cases(out, rows):
    cases = {}
    for name, (init, dora) in INITS.items():
        model = peft.get_peft_model(load(out, "untied"), peft.LoraConfig(**LORA, init_lora_weights=init, use_dora=dora))
        cases[name] = train(model, rows)
        cases[name].update(init_lora_weights=init, use_dora=dora)
    return cases
