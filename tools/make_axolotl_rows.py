#!/usr/bin/env python3
"""Writes test/data/axolotl_rows/cases.json: the input_ids and labels Axolotl 0.19 itself makes of
small alpaca, completion (.jsonl, .json and .txt, and as ds_type names them), user-defined,
input_output and chat_template datasets,
which test_axolotl_rows holds llm_train's data pipeline to.

Axolotl's own functions run here (imported from its wheel, unmodified): HF datasets' `json` /
`text` loaders as its get_dataset_type picks them, get_dataset_wrapper (its prompt strategies),
handle_long_seq_in_dataset (excess_length_strategy, min_sample_len), then
process_datasets_for_packing, which drops rows without a trained token. Axolotl runs that last
filter only with sample_packing; llm_train drops such rows always (README: datasets), so the
reference applies it always. A case of split "test" is read as Axolotl reads test_datasets: its
length filter at eval_sequence_len (sft.py's _load_raw_datasets), the strategies still tokenizing
at sequence_len, so an alpaca or user-defined row past sequence_len is kept as its two truncated
tokenizer calls (prompt, then response) cut it.

And the texts Axolotl's rl transforms write of preference rows (its prompt_strategies.dpo and .kto
loaders): prompt, chosen and rejected for rl: dpo; prompt, completion and label for rl: kto; which
rows its length rule keeps (utils.data.rl's _drop_long_sequences), and the ids TRL 1.9, the
version Axolotl 0.19 pins, makes of them (its DPOTrainer's and KTOTrainer's _prepare_dataset, run
unmodified on the kept rows: EOS added, prompt and prompt + response tokenized, rows whose prompt
fills max_length dropped).

The tokenizer (written beside the cases as tokenizer.json and tokenizer_config.json) is
test/data/hf_tokenizer's small vocabulary with Llama 3's and ChatML's chat markers added as special
tokens and a BOS post-processor, as Llama 3's tokenizer.json adds <|begin_of_text|>: Axolotl's
strategies rely on the tokenizer's BOS.

Needs transformers, datasets and Axolotl 0.19's source importable (its wheel unpacked, e.g.
`pip download --no-deps axolotl==0.19.0` and unzip; plus addict, colorama, posthog, numba) and
TRL 1.9.0's (`pip download --no-deps trl==1.9.0`, unzipped):
  PYTHONPATH=/tmp/trl19/src:/tmp/ax/src python tools/make_axolotl_rows.py
(and torch, 2.11 to 2.13, which Axolotl and TRL import). datasets 5.2.0 (pyarrow 26, pandas 3.1)
writes this fixture; under 4.8.4, Axolotl's pin, HF's json loader raises on the case of an array
after a BOM (its mixed-types retry parses the line, BOM and all).
"""
import inspect
import json
import os
import pathlib
import tempfile
import types

from datasets import Dataset, load_dataset
from tokenizers import Tokenizer
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

from axolotl.prompt_strategies.dpo import load as load_dpo
from axolotl.prompt_strategies.kto import load as load_kto
from axolotl.prompt_strategies.orpo import load as load_orpo
from axolotl.utils.data.rl import _drop_long_sequences, _raise_on_long_sequences, _truncate_long_sequences_rl
from axolotl.utils.data.shared import get_dataset_type
from axolotl.utils.data.utils import remove_double_bos_token
from axolotl.utils.data.utils import handle_long_seq_in_dataset
from axolotl.utils.data.wrappers import get_dataset_wrapper
from axolotl.utils.dict import DictDefault
from axolotl.utils.schemas.enums import RLType
from trl import DPOConfig, KTOConfig
from trl.trainer.dpo_trainer import DPOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.kto_trainer import KTOTrainer
from axolotl.utils.trainer import process_datasets_for_packing

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "test" / "data" / "hf_tokenizer"
OUT = ROOT / "test" / "data" / "axolotl_rows"
CHAT_MARKERS = ["<|start_header_id|>", "<|end_header_id|>", "<|im_start|>", "<|im_end|>"]


def write_tokenizer():
    tk = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    tk.add_special_tokens(CHAT_MARKERS)
    bos = "<|begin_of_text|>"
    tk.post_processor = TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tk.token_to_id(bos))])
    tk.save(str(OUT / "tokenizer.json"))
    (OUT / "tokenizer_config.json").write_text((FIXTURE / "tokenizer_config.json").read_text())


def tokenizer():
    config = json.loads((OUT / "tokenizer_config.json").read_text())
    return PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"), bos_token=config["bos_token"],
                                   eos_token=config["eos_token"])


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def rows_of(lines):
    return [json.loads(line) for line in lines.splitlines()]


HELLO = "hello world " * 60  # about 120 tokens
LETTERS = "".join(chr(ord("a") + (i * 7) % 26) for i in range(1500))  # one token a letter

ALPACA = jsonl([
    {"instruction": "hello", "input": "world 12", "output": "hello world"},
    {"instruction": "say hello", "input": "", "output": "hello"},
    {"instruction": "null input", "input": None, "output": "12345"},
    {"instruction": "empty output", "input": "x", "output": ""},
    {"instruction": "null output", "input": "x", "output": None},
    {"instruction": "no output key", "input": "x"},  # None, as the column has others
    {"instruction": "naïve", "output": "café 中文 🎉"},  # no input key: None, as the column has others
    {"instruction": "long", "input": "", "output": HELLO * 3},
])

USER_DEFINED = {"field_instruction": "q", "field_output": "a", "field_system": "sys",
                "system_prompt": "Be brief.", "system_format": "[{system}] ",
                "format": "Q: {instruction} ({input})\nA: ", "no_input_format": "Q: {instruction}\nA: "}
USER_ROWS = jsonl([
    {"q": "hello", "input": "12", "a": "world", "sys": "Own system."},
    {"q": "hello", "a": "world"},  # no sys key while another row has one: None, no system text
    {"q": "empty answer", "input": "", "a": "", "sys": None},
    {"q": "", "a": "hello"},
])
USER_NO_SYSTEM_COLUMN = jsonl([{"q": "hello", "a": "world"}, {"q": "", "a": "hello world"}])

COMPLETION = jsonl([
    {"text": "hello world"},
    {"text": ""},
    {"text": None},
    {"id": 7},  # no text key: None, as the column has others
    {"text": "x"},
    {"text": HELLO},
    {"text": LETTERS},
])
TEXT_FILE = "hello world\r\nsecond line\rthird\n\n   \n%\n" + LETTERS[:40] + "\nlast line, no newline"

INPUT_OUTPUT = jsonl([
    {"segments": [{"text": "<|begin_of_text|>hello ", "label": False}, {"text": "world<|eot_id|>", "label": True}]},
    {"segments": [{"text": "only a prompt", "label": False}]},
    {"segments": [{"text": "hello", "label": True}, {"text": " 123", "label": False}, {"text": " world", "label": True}]},
])

def msg(role, content, **more):
    return {"role": role, "content": content, **more}


CHAT = jsonl([
    {"messages": [msg("system", "Be brief."), msg("user", "hello 123"), msg("assistant", "world 1"),
                  msg("user", "hello world"), msg("assistant", "hello, world 12")]},
    {"messages": [msg("user", "hello"), msg("assistant", " hello world ")]},  # the template trims
    {"messages": [msg("system", "x"), msg("user", "only a question")]},  # nothing trains: dropped
    {"messages": [msg("user", "long"), msg("assistant", HELLO)]},  # past sequence_len: dropped
])
SHAREGPT = jsonl([
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "hello"},
                       {"from": "gpt", "value": "world"}, {"from": "human", "value": "12"},
                       {"from": "gpt", "value": "123"}]},
])
FLAGGED = jsonl([
    {"messages": [msg("user", "hello", train=True), msg("assistant", "world 1", train=False),
                  msg("user", "hello world"), msg("assistant", "12")]},
])
# Rows around sequence_len for the test split with eval_sequence_len (above): prompts and responses
# each just under, at, just over and well past sequence_len, which Axolotl's two tokenizer calls cut
# (prompt: its first sequence_len tokens; response: BOS + its tokens cut at sequence_len, EOS only
# when that call is shorter, BOS stripped). PLAIN's letters merge with none: one token each.
PLAIN = "".join("abcfgijkmnpqstuvxyz"[(i * 7) % 19] for i in range(400))
# alpaca at sequence_len 150: "hello"'s prompt is 139 tokens (BOS included), PLAIN[:k]'s 138 + k.
ALPACA_AROUND = jsonl([
    {"instruction": "hello", "input": "", "output": "hello world"},  # well under
    {"instruction": "hello", "input": "", "output": PLAIN[:10]},  # 150: at sequence_len
    {"instruction": "hello", "input": "", "output": PLAIN[:11]},  # 151: just over, no call cut
    {"instruction": "hello", "input": "", "output": PLAIN[:148]},  # response call 149: EOS added
    {"instruction": "hello", "input": "", "output": PLAIN[:149]},  # response call 150: no EOS
    {"instruction": "hello", "input": "", "output": PLAIN[:150]},  # cut to 149, no EOS
    {"instruction": "hello", "input": "", "output": PLAIN[:320]},  # well past: cut to 149
    {"instruction": PLAIN[:11], "input": "", "output": "world"},  # prompt 149
    {"instruction": PLAIN[:12], "input": "", "output": "world"},  # prompt 150
    {"instruction": PLAIN[:13], "input": "", "output": "world"},  # prompt 151: cut to 150
    {"instruction": PLAIN[:60], "input": "", "output": "world"},  # prompt well past
    {"instruction": "hello", "input": PLAIN[:40], "output": "world"},  # a long input: prompt cut
    {"instruction": PLAIN[:40], "input": "", "output": PLAIN[:200]},  # both cut: 150 + 149
    {"instruction": PLAIN[:40], "input": "", "output": ""},  # a cut prompt, no response: nothing trains
])
# user-defined at sequence_len 16: "Q: {instruction}\nA: " is 8 + k tokens for PLAIN[:k] (BOS included).
USER_AROUND = jsonl([
    {"q": "hello", "a": "world", "sys": None},  # 11: well under
    {"q": "hello", "a": PLAIN[:6], "sys": None},  # 16: at sequence_len
    {"q": "hello", "a": PLAIN[:7], "sys": None},  # 17: just over, no call cut
    {"q": "hello", "a": PLAIN[:14], "sys": None},  # response call 15: EOS added
    {"q": "hello", "a": PLAIN[:15], "sys": None},  # response call 16: no EOS
    {"q": "hello", "a": PLAIN[:16], "sys": None},  # cut to 15, no EOS
    {"q": "hello", "a": PLAIN[:40], "sys": None},  # well past: cut to 15
    {"q": PLAIN[:7], "a": "world", "sys": None},  # prompt 15
    {"q": PLAIN[:8], "a": "world", "sys": None},  # prompt 16
    {"q": PLAIN[:9], "a": "world", "sys": None},  # prompt 17: cut to 16
    {"q": PLAIN[:30], "a": "world", "sys": None},  # prompt well past
    {"q": "hello", "input": PLAIN[:10], "a": "world", "sys": "Own system."},  # system and input: prompt cut
    {"q": PLAIN[:30], "a": PLAIN[:40], "sys": None},  # both cut: 16 + 15
    {"q": PLAIN[:30], "a": "", "sys": None},  # a cut prompt, no response: nothing trains
])

SHAREGPT_ENTRY = {"type": "chat_template", "field_messages": "conversations",
                  "message_property_mappings": {"role": "from", "content": "value"},
                  "roles": {"user": ["human"], "assistant": ["gpt"], "system": ["system"]}}

CASES = [
    # name, file, content, dataset entry, config
    ("alpaca", "rows.jsonl", ALPACA, {"type": "alpaca"}, {"sequence_len": 256}),
    ("alpaca train_on_inputs", "rows.jsonl", ALPACA, {"type": "alpaca"}, {"sequence_len": 256, "train_on_inputs": True}),
    ("alpaca truncate", "rows.json", "[" + ALPACA.strip().replace("\n", ",\n") + "]", {"type": "alpaca"},
     {"sequence_len": 200, "excess_length_strategy": "truncate"}),
    ("user-defined", "rows.jsonl", USER_ROWS, {"type": USER_DEFINED}, {"sequence_len": 64}),
    ("user-defined train_on_inputs", "rows.jsonl", USER_ROWS, {"type": USER_DEFINED},
     {"sequence_len": 64, "train_on_inputs": True}),
    ("user-defined without a system column", "rows.jsonl", USER_NO_SYSTEM_COLUMN, {"type": USER_DEFINED},
     {"sequence_len": 64}),
    ("completion jsonl", "rows.jsonl", COMPLETION, {"type": "completion"}, {"sequence_len": 16}),
    ("completion jsonl min_sample_len 4", "rows.jsonl", COMPLETION, {"type": "completion"},
     {"sequence_len": 16, "min_sample_len": 4}),
    ("completion txt", "rows.txt", TEXT_FILE, {"type": "completion"}, {"sequence_len": 16}),
    # HF's json loader, whatever the file's name: JSON Lines in a .json file, an array after a BOM
    # or after blank lines (its pandas fallback), an array of texts; ds_type naming the loader.
    ("alpaca .json of JSON Lines", "rows.json", ALPACA, {"type": "alpaca"}, {"sequence_len": 256}),
    ("alpaca .json array after a BOM", "rows.json", "\ufeff" + json.dumps(rows_of(ALPACA), ensure_ascii=False),
     {"type": "alpaca"}, {"sequence_len": 256}),
    ("alpaca .json array after blank lines", "rows.json", "\n\n" + json.dumps(rows_of(ALPACA), indent=1),
     {"type": "alpaca"}, {"sequence_len": 256}),
    ("completion .json array of texts", "rows.json", json.dumps(["hello world", "x", HELLO]), {"type": "completion"},
     {"sequence_len": 16}),
    ("alpaca ds_type json, another name", "rows.data", ALPACA, {"type": "alpaca", "ds_type": "json"},
     {"sequence_len": 256}),
    ("completion ds_type text on .jsonl", "rows.jsonl", COMPLETION, {"type": "completion", "ds_type": "text"},
     {"sequence_len": 16}),
    ("input_output", "rows.jsonl", INPUT_OUTPUT, {"type": "input_output"}, {"sequence_len": 32}),
    ("input_output train_on_inputs", "rows.jsonl", INPUT_OUTPUT, {"type": "input_output"},
     {"sequence_len": 32, "train_on_inputs": True}),
    ("chat llama3", "rows.jsonl", CHAT, {"type": "chat_template"}, {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_eos all", "rows.jsonl", CHAT, {"type": "chat_template", "train_on_eos": "all"},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_eos last", "rows.jsonl", CHAT, {"type": "chat_template", "train_on_eos": "last"},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_eos none", "rows.jsonl", CHAT, {"type": "chat_template", "train_on_eos": "none"},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 roles_to_train user, assistant", "rows.jsonl", CHAT,
     {"type": "chat_template", "roles_to_train": ["user", "assistant"]}, {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_inputs", "rows.jsonl", CHAT, {"type": "chat_template"},
     {"sequence_len": 96, "chat_template": "llama3", "train_on_inputs": True}),
    ("chat llama3 drop_system_message", "rows.jsonl", CHAT, {"type": "chat_template", "drop_system_message": True},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat chatml", "rows.jsonl", CHAT, {"type": "chat_template", "chat_template": "chatml"},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat chatml eot_tokens", "rows.jsonl", CHAT, {"type": "chat_template", "chat_template": "chatml"},
     {"sequence_len": 96, "chat_template": "llama3", "eot_tokens": ["<|im_end|>"]}),
    # The fixture's EOS is <|eot_id|>, llama3's end of turn: train_on_eot and train_on_eos both train it.
    ("chat llama3 train_on_eot none", "rows.jsonl", CHAT, {"type": "chat_template", "train_on_eot": "none"},
     {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_eos none, train_on_eot turn", "rows.jsonl", CHAT,
     {"type": "chat_template", "train_on_eos": "none", "train_on_eot": "turn"}, {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 train_on_eos last, train_on_eot all", "rows.jsonl", CHAT,
     {"type": "chat_template", "train_on_eos": "last", "train_on_eot": "all"}, {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat llama3 eot_tokens with EOS, train_on_eot last (refused)", "rows.jsonl", CHAT,
     {"type": "chat_template", "train_on_eot": "last"},
     {"sequence_len": 96, "chat_template": "llama3", "eot_tokens": ["<|eot_id|>", "<|im_end|>"]}),
    # A base tokenizer's EOS (special_tokens): llama3's turn ends train only as eot_tokens.
    ("chat llama3 base EOS", "rows.jsonl", CHAT, {"type": "chat_template"},
     {"sequence_len": 96, "chat_template": "llama3", "special_tokens": {"eos_token": "<|end_of_text|>"}}),
    ("chat llama3 base EOS eot_tokens, train_on_eot last", "rows.jsonl", CHAT,
     {"type": "chat_template", "train_on_eot": "last"},
     {"sequence_len": 96, "chat_template": "llama3", "special_tokens": {"eos_token": "<|end_of_text|>"},
      "eot_tokens": ["<|eot_id|>"]}),
    ("chat sharegpt fields", "rows.jsonl", SHAREGPT, SHAREGPT_ENTRY, {"sequence_len": 96, "chat_template": "llama3"}),
    ("chat message_field_training", "rows.jsonl", FLAGGED, {"type": "chat_template", "message_field_training": "train"},
     {"sequence_len": 96, "chat_template": "llama3"}),
]
# The rows around sequence_len as Axolotl's test split (test_datasets) with eval_sequence_len
# (a sixth field, "test"), which keeps rows the calls cut (or, past eval_sequence_len, drops or
# truncates them), and as its train split, which drops or truncates them at sequence_len.
for kind, content, entry, length, long_eval, short_eval in (
        ("alpaca", ALPACA_AROUND, {"type": "alpaca"}, 150, 400, 200),
        ("user-defined", USER_AROUND, {"type": USER_DEFINED}, 16, 48, 20)):
    for excess in ("drop", "truncate"):
        for eval_len in (long_eval, short_eval):
            CASES.append((f"{kind} test split eval_sequence_len {eval_len} {excess}", "rows.jsonl", content, entry,
                          {"sequence_len": length, "eval_sequence_len": eval_len, "excess_length_strategy": excess},
                          "test"))
        CASES.append((f"{kind} train split around sequence_len {excess}", "rows.jsonl", content, entry,
                      {"sequence_len": length, "excess_length_strategy": excess}))
CASES.append(("user-defined test split eval_sequence_len 48 train_on_inputs", "rows.jsonl", USER_AROUND,
              {"type": USER_DEFINED}, {"sequence_len": 16, "eval_sequence_len": 48, "train_on_inputs": True}, "test"))


# DPO pairs: the prompt, chosen and rejected texts Axolotl's transforms write (rl: dpo).
PAIRS = jsonl([
    {"prompt": "hello", "chosen": "world", "rejected": "12", "system": "Be brief."},
    {"prompt": "hello world", "chosen": "yes", "rejected": "no", "system": ""},
    {"prompt": "q", "chosen": "a", "rejected": "b", "system": None},
])
INSTRUCTION_PAIRS = jsonl([
    {"instruction": "hello", "chosen_response": "world", "rejected_response": "12"},
])
CHAT_PAIRS = jsonl([
    {"messages": [msg("system", "Be brief."), msg("user", "hello 123")],
     "chosen": msg("assistant", "world 1"), "rejected": msg("assistant", "hello")},
    {"messages": "just a question", "chosen": "yes", "rejected": "no"},
    {"messages": [msg("user", "hello")], "chosen": [msg("user", "hello"), msg("assistant", "12")],
     "rejected": [msg("user", "hello"), msg("assistant", "123")]},
])
ARGILLA_CHAT = jsonl([
    {"chosen": [msg("user", "hello"), msg("assistant", "world")],
     "rejected": [msg("user", "hello"), msg("assistant", "12")]},
])

SYSTEM_ROWS = [{"system": "Be brief."}, {"system": ""}, {"system": None}]


def with_system(rows):
    """Each row under each kind of system field: a text, empty, null (a row of HF's loader)."""
    return jsonl([{**system, **row} for row in rows for system in SYSTEM_ROWS])


TURNS = [msg("user", "hello 123"), msg("assistant", "world")]
ICR_PAIRS = with_system([{"input": "hello", "chosen": "world", "rejected": "12"}])
INTEL_PAIRS = with_system([{"question": "hello", "chosen": "world", "rejected": "12"}])
PROMPT_PAIRS = with_system([{"prompt": "hello", "chosen": "world", "rejected": "12"}])
ULTRA_PAIRS = with_system([{"prompt": "hello", "chosen": [msg("user", "hello"), msg("assistant", "world")],
                            "rejected": [msg("user", "hello"), msg("assistant", "12")]}])

PAIR_CASES = [("dpo", "llama3.default", PAIRS), ("dpo", "chatml.default", PAIRS), ("dpo", "llama3.default", INSTRUCTION_PAIRS),
              ("dpo", "llama3.argilla_chat", ARGILLA_CHAT), ("dpo", "chatml.argilla_chat", ARGILLA_CHAT),
              ("dpo", "chat_template.default", CHAT_PAIRS), ("dpo", "chat_template.argilla_chat", ARGILLA_CHAT)]
# Responses of 1 to 40 letters (a token each) around sequence_len 48, some starting with a newline or
# a space (which may merge with the prompt's end): Axolotl's length rule, TRL's BOS and EOS, its cut.
# And empty responses after prompts of 20 to 44 letters: TRL drops a row whose prompt ids (BOS
# first) fill max_length, which Axolotl's rule (no BOS counted) keeps.
LENGTH_PAIRS = jsonl([{"prompt": "hello", "chosen": lead + LETTERS[:n], "rejected": LETTERS[n:2 * n]}
                      for n in range(1, 41, 3) for lead in ("", "\n", " ")] +
                     [{"prompt": LETTERS[:n], "chosen": "", "rejected": ""} for n in range(20, 45)])
PAIR_CASES.append(("dpo", "llama3.prompt_pairs", LENGTH_PAIRS))
PAIR_CASES.append(("dpo", "chatml.prompt_pairs", LENGTH_PAIRS))
for markup in ("llama3", "chatml"):
    PAIR_CASES += [("dpo", f"{markup}.icr", ICR_PAIRS), ("dpo", f"{markup}.intel", INTEL_PAIRS),
                   ("dpo", f"{markup}.prompt_pairs", PROMPT_PAIRS), ("dpo", f"{markup}.ultra", ULTRA_PAIRS)]

# KTO rows: a prompt, one completion and its label (true, false, 1 or 0).
KTO_ARGILLA = with_system([{"instruction": "hello", "completion": "world", "label": True},
                           {"instruction": "hello", "completion": "12", "label": 0}])
KTO_INTEL = with_system([{"question": "hello", "completion": "world", "label": False}])
KTO_PROMPT = with_system([{"prompt": "hello", "completion": "world", "label": 1}])
KTO_CHAT = jsonl([
    {"completion": [msg("user", "hello"), msg("assistant", "world")], "label": True},
    {"completion": [msg("system", "Be brief."), msg("user", "hello"), msg("assistant", "12"), msg("user", "again"),
                    msg("assistant", "world")], "label": False},
])
KTO_LENGTHS = jsonl([{"prompt": "hello", "completion": lead + LETTERS[:n], "label": n % 2 == 0}
                     for n in range(1, 41, 3) for lead in ("", "\n", " ")] +
                    [{"prompt": LETTERS[:n], "completion": "", "label": True} for n in range(20, 45)])
PAIR_CASES.append(("kto", "llama3.prompt_pairs", KTO_LENGTHS))
for markup in ("llama3", "chatml"):
    PAIR_CASES += [("kto", f"{markup}.argilla", KTO_ARGILLA), ("kto", f"{markup}.argilla_chat", KTO_CHAT),
                   ("kto", f"{markup}.intel", KTO_INTEL), ("kto", f"{markup}.prompt_pairs", KTO_PROMPT),
                   ("kto", f"{markup}.ultra", KTO_PROMPT)]


# Rows formatted by their author: passthrough (no type: the texts as they are, markers included)
# and user-defined formats (a type map).
HEADER = "<|start_header_id|>{}<|end_header_id|>\n\n"
PASSTHROUGH_PAIRS = jsonl([
    {"prompt": HEADER.format("user") + "hello<|eot_id|>" + HEADER.format("assistant"), "chosen": "world<|eot_id|>",
     "rejected": "12"},
    {"prompt": "hello world: ", "chosen": "yes", "rejected": "no"},
])
PASSTHROUGH_KTO = jsonl([
    {"prompt": HEADER.format("user") + "hello<|eot_id|>" + HEADER.format("assistant"), "completion": "world<|eot_id|>",
     "label": True},
    {"prompt": "hello world: ", "completion": "no", "label": 0},
])
USER_DEFINED_PAIRS = {"field_prompt": "question", "field_chosen": "good", "field_rejected": "bad",
                      "prompt_format": "[{system}] " + HEADER.format("user") + "{prompt}<|eot_id|>",
                      "chosen_format": "{chosen}<|eot_id|>", "rejected_format": ""}
USER_DEFINED_PAIR_ROWS = jsonl([
    {"question": "hello", "good": "world", "bad": "12", "system": "Be brief."},
    {"question": "hello world", "good": "yes", "bad": "no", "system": None},
    {"question": "q", "good": "a", "bad": "b"},
])
USER_DEFINED_KTO = {"field_prompt": "question", "field_completion": "answer", "field_label": "ok",
                    "prompt_format": "{prompt}\n", "completion_format": "{completion}<|eot_id|>"}
USER_DEFINED_KTO_ROWS = jsonl([
    {"question": "hello", "answer": "world", "ok": True},
    {"question": "hello", "answer": "12", "ok": False},
])
PAIR_CASES += [("dpo", None, PASSTHROUGH_PAIRS), ("kto", None, PASSTHROUGH_KTO), ("orpo", None, PASSTHROUGH_PAIRS),
               ("dpo", USER_DEFINED_PAIRS, USER_DEFINED_PAIR_ROWS), ("kto", USER_DEFINED_KTO, USER_DEFINED_KTO_ROWS)]

# ORPO's one type: chosen and rejected conversations, user and assistant in turn; responses around
# sequence_len 48, where TRL's ORPO cut applies.
ORPO_ROWS = jsonl([{"chosen": [msg("user", "hello"), msg("assistant", "world")],
                    "rejected": [msg("user", "hello"), msg("assistant", "12")], "system": "Be brief."},
                   {"chosen": [msg("user", "q"), msg("assistant", "a"), msg("user", "hello"), msg("assistant", "world")],
                    "rejected": [msg("user", "q"), msg("assistant", "a"), msg("user", "hello"), msg("assistant", "12")]}] +
                  [{"chosen": [msg("user", "hello"), msg("assistant", LETTERS[:n])],
                    "rejected": [msg("user", "hello"), msg("assistant", LETTERS[n:n + n // 2 + 1])]}
                   for n in range(1, 31, 2)])
PAIR_CASES.append(("orpo", "chat_template.argilla", ORPO_ROWS))
# Under a base EOS (special_tokens) TRL adds EOS after each response, which takes a pair at
# sequence_len one past it: TRL's cut of both responses.
PAIR_CASES.append(("orpo", "chat_template.argilla", ORPO_ROWS, None, {"eos_token": "<|end_of_text|>"}))

# rl: simpo runs TRL's CPOTrainer, whose tokenize_row is ORPO's; a base EOS takes pairs past the limit.
PAIR_CASES += [("simpo", "llama3.prompt_pairs", LENGTH_PAIRS), ("simpo", "chatml.prompt_pairs", LENGTH_PAIRS, None,
                                                                {"eos_token": "<|end_of_text|>"})]

# excess_length_strategy under rl: truncate cuts long responses, raise refuses the dataset.
PAIR_CASES += [("dpo", "llama3.prompt_pairs", LENGTH_PAIRS, "truncate"), ("kto", "llama3.prompt_pairs", KTO_LENGTHS, "truncate"),
               ("dpo", "llama3.prompt_pairs", LENGTH_PAIRS, "raise")]

PAIR_SEQUENCE_LEN = 48


def axolotl_pairs(tok, path, rl, dataset_type, excess=None, special_tokens=None):
    """What Axolotl's rl transform writes of each row: prompt, chosen and rejected (dpo), or prompt,
    completion and label (kto); then whether its length rule keeps the row, and the ids TRL 1.9's
    trainer (Axolotl 0.19's pin) makes of it: prompt_ids and chosen_ids / rejected_ids or
    completion_ids, null for a row it drops."""
    cfg = DictDefault({"rl": rl, "chat_template": "llama3", "datasets": [{"path": path, "type": dataset_type}],
                       "dataset_num_proc": 1})
    if special_tokens:  # as Axolotl's load_tokenizer applies them
        tok = tokenizer()
        tok.add_special_tokens(dict(special_tokens))
    if dataset_type is None:  # Axolotl's _load_split: the rows as they are
        transform = lambda row: row  # noqa: E731
    else:  # a type map is user_defined.default, as its _load_split names it
        name = "user_defined.default" if isinstance(dataset_type, dict) else dataset_type
        transform = {"kto": load_kto, "orpo": load_orpo}.get(rl, load_dpo)(name, cfg, dataset_idx=0)
    if isinstance(transform, tuple):
        transform = transform[0]
    dataset = load_dataset("json", data_files=path, split="train")
    keys = ("prompt", "completion", "label") if rl == "kto" else ("prompt", "chosen", "rejected")
    out = []
    for row in dataset:
        if "tokenizer" in inspect.signature(transform).parameters:
            r = transform(dict(row), tokenizer=tok)
        else:
            r = transform(dict(row))
        out.append({k: r[k] for k in keys})
    rl_type = {"kto": RLType.KTO, "orpo": RLType.ORPO, "simpo": RLType.SIMPO}.get(rl, RLType.DPO)
    texts = [dict(r) for r in out]  # what the rows' transform wrote; the ids are of them after excess
    if excess == "truncate":
        texts = [_truncate_long_sequences_rl(r, rl_type, tok, PAIR_SEQUENCE_LEN) for r in texts]
    if excess == "raise":
        for r in texts:
            _raise_on_long_sequences(r, rl_type, tok, PAIR_SEQUENCE_LEN)  # raises ValueError at the first
    kept = [i for i, r in enumerate(texts) if _drop_long_sequences(r, rl_type, tok, PAIR_SEQUENCE_LEN)]
    if rl in ("orpo", "simpo"):  # TRL 1.9's ORPOTrainer / CPOTrainer tokenize_row, its own code, on each kept row
        trainer = ORPOTrainer if rl == "orpo" else CPOTrainer
        owner = types.SimpleNamespace(processing_class=tok, is_encoder_decoder=False, max_length=PAIR_SEQUENCE_LEN)
        owner.build_tokenized_answer = types.MethodType(trainer.build_tokenized_answer, owner)
        for i in kept:
            batch = trainer.tokenize_row(owner, texts[i])
            out[i]["trl"] = {k: batch[k] for k in ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels")}
        return out
    trainer, config = (KTOTrainer, KTOConfig) if rl == "kto" else (DPOTrainer, DPOConfig)
    args = config(output_dir=tempfile.gettempdir(), max_length=PAIR_SEQUENCE_LEN, report_to=[], use_cpu=True, bf16=False,
                  per_device_train_batch_size=2)
    owner = types.SimpleNamespace(_tokenizer=tok, calculate_KL=False, desirable_weight=1.0, undesirable_weight=1.0)
    # (a label column of true and 0, as a JSON file may hold, is read by TRL as bools)
    rows = Dataset.from_list([{**texts[i], "index": i, **({"label": bool(texts[i]["label"])} if rl == "kto" else {})}
                              for i in kept])
    for r in trainer._prepare_dataset(owner, rows, tok, args, "train"):
        ids = ("prompt_ids", "completion_ids") if rl == "kto" else ("prompt_ids", "chosen_ids", "rejected_ids")
        trl = {k: r[k] for k in ids}
        # Axolotl's DPO trainer means to drop the second BOS of a prompt whose template writes its
        # own (its _tokenize override, remove_double_bos_token), but TRL 1.9 calls a module-level
        # _tokenize, so the override never runs; the fixture holds the intended ids (README says so).
        if rl == "dpo":
            trl["prompt_ids"] = remove_double_bos_token({"input_ids": trl["prompt_ids"]}, tok.bos_token_id)["input_ids"]
        out[r["index"]]["trl"] = trl
    return out


def axolotl_rows(tok, path, entry, config, split="train"):
    """The rows Axolotl makes of the file as its `split` (train, or test: test_datasets), or
    {"error": its message} when it refuses the config."""
    if "special_tokens" in config:  # as Axolotl's load_tokenizer applies them
        tok = tokenizer()
        tok.add_special_tokens(dict(config["special_tokens"]))
    cfg = DictDefault({"train_on_inputs": False, "excess_length_strategy": None, "min_sample_len": None,
                       "sample_packing": True, "dataset_num_proc": 1, "is_preprocess": True, **config})
    dataset_config = DictDefault({"path": path, **entry})
    dataset = load_dataset(get_dataset_type(dataset_config), data_files=path, split="train")
    base_type = entry["type"] if isinstance(entry["type"], str) else None
    try:
        wrapped, _ = get_dataset_wrapper(dataset_config, tok, cfg, base_type, dataset)
    except ValueError as e:
        return {"error": str(e)}
    if split == "test" and cfg.eval_sequence_len:  # as sft.py's _load_raw_datasets filters the test split
        wrapped = handle_long_seq_in_dataset(wrapped, cfg.eval_sequence_len, cfg)
    else:
        wrapped = handle_long_seq_in_dataset(wrapped, cfg.sequence_len, cfg)
    wrapped, _ = process_datasets_for_packing(cfg, wrapped, None)
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in wrapped]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_tokenizer()
    tok = tokenizer()
    cases = []
    with tempfile.TemporaryDirectory() as work:
        for i, (name, file, content, entry, config, *split) in enumerate(CASES):
            path = os.path.join(work, str(i), file)
            os.makedirs(os.path.dirname(path))
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(content)
            rows = axolotl_rows(tok, path, entry, config, *split)
            cases.append({"name": name, "file": file, "content": content, "entry": entry, "config": config,
                          **({"split": split[0]} if split else {}),
                          **(rows if isinstance(rows, dict) else {"examples": rows})})
            print(f"{name}: {rows['error'] if isinstance(rows, dict) else f'{len(rows)} examples'}")
        for i, (rl, dataset_type, content, *more) in enumerate(PAIR_CASES):
            excess, special_tokens = (more + [None, None])[:2]
            path = os.path.join(work, f"pairs{i}", "pairs.jsonl")
            os.makedirs(os.path.dirname(path))
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            kind = "passthrough" if dataset_type is None else "user_defined" if isinstance(dataset_type, dict) \
                else dataset_type
            try:
                result = {"pairs": axolotl_pairs(tok, path, rl, dataset_type, excess, special_tokens)}
            except ValueError as e:  # Axolotl refuses the dataset
                result = {"error": str(e)}
            cases.append({"name": f"rl {rl} {kind}" + (f" excess_length_strategy {excess}" if excess else "") +
                          (" base EOS" if special_tokens else ""),
                          "file": "pairs.jsonl", "content": content,
                          "entry": {} if dataset_type is None else {"type": dataset_type},
                          "config": {"rl": rl, "chat_template": "llama3", "sequence_len": PAIR_SEQUENCE_LEN,
                                     **({"micro_batch_size": 2} if rl == "kto" else {}),
                                     **({"excess_length_strategy": excess} if excess else {}),
                                     **({"special_tokens": special_tokens} if special_tokens else {})},
                          **result})
            print(f"rl {rl} {kind} {excess}: {result['error'] if 'error' in result else len(result['pairs'])}")
    # One case a line: the token lists would otherwise take a line each.
    lines = [json.dumps(case, ensure_ascii=False, separators=(",", ":")) for case in cases]
    (OUT / "cases.json").write_text('{"axolotl": "0.19.0", "tokenizer": "tokenizer.json beside this file",\n'
                   ' "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
