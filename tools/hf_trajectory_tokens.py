"""The token tables' cases of make_hf_trajectory.py. PEFT's trainable token rows beside LoRA
(Axolotl's peft_trainable_token_indices), which --add token_rows computes:
  lora_tokens_untied  LoRA on the untied model with trainable_token_indices {embed_tokens: [...],
                      lm_head: [...]}: each table's rows train as a tensor of their own
  lora_tokens_tied    LoRA on the tied model with a list: the embedding's rows, which PEFT ties
                      lm_head to
Each starts from the adapter PEFT initialised (OUT/<case>_init, loaded through lora_model_dir:
its A is drawn from torch's generator, its rows are the table's own).
Axolotl's shrink_embeddings, which --add shrink computes:
  shrunk              the untied model (vocabulary 272) cut by transformers' resize_token_embeddings
                      to llm_train's byte tokenizer's 259 ids, as Axolotl's _resize_token_embeddings
                      does when the tokenizer is the smaller and shrink_embeddings is set"""
import os

import peft
import torch

from make_hf_trajectory import LORA, load, train

# Ids frequent in the fixture's rows (inputs for the embedding, targets for lm_head).
TOKEN_ROWS = {"lora_tokens_untied": ("untied", {"embed_tokens": [93, 193, 135], "lm_head": [208, 217]}, 5),
              "lora_tokens_tied": ("tied", [92, 171, 147], 6)}


def token_rows_cases(out, rows):
    cases = {}
    for name, (model_name, indices, seed) in TOKEN_ROWS.items():
        torch.manual_seed(seed)
        model = peft.get_peft_model(load(out, model_name),
                                    peft.LoraConfig(**LORA, trainable_token_indices=indices))
        model.save_pretrained(os.path.join(out, name + "_init"))
        os.remove(os.path.join(out, name + "_init", "README.md"))  # PEFT's model card: not read
        cases[name] = train(model, rows)
        cases[name].update(model=model_name, trainable_token_indices=indices)
    return cases


BYTE_TOKENIZER_IDS = 259


def shrink_cases(out, rows):
    model = load(out, "untied")
    model.resize_token_embeddings(BYTE_TOKENIZER_IDS)
    assert model.lm_head.weight.shape[0] == BYTE_TOKENIZER_IDS
    case = train(model, rows)
    case.update(vocab_size=BYTE_TOKENIZER_IDS)
    return {"shrunk": case}
