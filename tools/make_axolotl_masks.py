#!/usr/bin/env python3
"""Writes test/data/chat/axolotl_masks.json: the tokens and labels Axolotl's chat_template strategy
gives a few conversations under Jinja chat templates, which test_chat_jinja holds llm_train's
Jinja path to.

The reference is transformers' own: apply_chat_template's rendering (its compiled jinja2
template), the rendered text tokenized by a PreTrainedTokenizerFast on test/data/hf_tokenizer
(add_special_tokens=False, as apply_chat_template tokenizes), and the labels chosen as Axolotl's
ChatTemplateStrategy chooses them (re-stated here, not imported: Axolotl is not a dependency):
  - a turn's tokens are found by rendering the conversation up to it twice, once with its content
    and once with a dummy content, and taking the first and the last token where they differ;
  - a turn trains when train_on_inputs or its role is in roles_to_train; a turn that does not is
    passed over entirely (its end of turn too) unless train_on_eos is all;
  - its end of turn is the first of the eot tokens (EOS when none are given) at or after the
    turn's end, counted when within 3 tokens of it; train_on_eos turn trains it with a trained
    turn, all always, last only the last one found, none never. (EOS is the eot token of
    test/data/hf_tokenizer, so Axolotl's separate EOS pass under train_on_eos is this one.)
  - message_field_training_detail (detail_cases): a message's spans decide whether it trains (a
    non-empty list does) and which tokens: its content tokenized alone with offsets, each token
    ending where the next starts, the spans widened to token boundaries, a token trained when a
    trained span holds it whole, set at the turn's start + its index.

Run from the repository root (needs transformers): tools/make_axolotl_masks.py
"""
import json
import pathlib

from transformers import PreTrainedTokenizerFast

import make_chat_fixtures

DUMMY = "[[dummy_message]]"
PLAIN = ("{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}<|eot_id|>{% endif %}"
         "\n{% endfor %}")


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATION = [msg("system", "Be brief."), msg("user", "hello 123"), msg("assistant", "world 1"),
                msg("user", "hello world"), msg("assistant", "hello, world 12")]


def span(begin, end, train):
    return {"begin_offset": begin, "end_offset": end, "train": train}


# Spans cutting tokens ("hello" is one token of the fixture's tokenizer), past the content, untrained
# inside trained, an empty list on a user turn, and spans over non-ASCII text.
DETAIL_CONVERSATION = [
    msg("user", "hello 123"),
    dict(msg("assistant", "hello, world 12345 hello"), train_detail=[span(2, 9, True), span(13, 40, True)]),
    dict(msg("user", "hello world"), train_detail=[]),
    dict(msg("assistant", "naïve café world"), train_detail=[span(0, 14, True), span(6, 9, False)])]


def detail_offsets(tokenizer, text, details):
    """Axolotl's get_offsets_for_train_detail: whether each token of text, tokenized alone, trains."""
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    offsets = [(offsets[i][0], offsets[i + 1][0] - 1) for i in range(len(offsets) - 1)] + [(offsets[-1][0], len(text) - 1)]
    adjusted = []
    for d in details:
        begin = next((i for i, (s, _) in enumerate(offsets) if s >= d["begin_offset"]), len(offsets))
        if begin > 0 and offsets[begin - 1][1] > d["begin_offset"]:
            begin -= 1
        end = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][1] <= d["end_offset"]), -1)
        if end < len(offsets) - 1 and offsets[end + 1][0] < d["end_offset"]:
            end += 1
        if begin <= end:
            adjusted.append((offsets[begin][0], offsets[end][1], d["train"]))
    return [any(s >= b and e <= f and t for b, f, t in adjusted) for s, e in offsets]


def axolotl_example(tokenizer, template, messages, roles_to_train, train_on_eos, eot_tokens, train_on_inputs):
    def ids_of(conversation):
        text = tokenizer.apply_chat_template(conversation, chat_template=template, tokenize=False,
                                             add_generation_prompt=False, bos_token=tokenizer.bos_token,
                                             eos_token=tokenizer.eos_token)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def turn_bounds(i):
        dummy = ids_of(messages[:i] + [msg(messages[i]["role"], DUMMY)])
        full = ids_of(messages[:i + 1])
        n = min(len(dummy), len(full))
        start = next((k for k in range(n) if dummy[k] != full[k]), None)
        end = next((len(full) - k for k in range(n) if dummy[len(dummy) - 1 - k] != full[len(full) - 1 - k]), None)
        if start is None or end is None or end <= start:
            return -1, -1
        return start, end

    ids = ids_of(messages)
    labels = [-100] * len(ids)
    eot_ids = [tokenizer.convert_tokens_to_ids(t) for t in eot_tokens] or [tokenizer.eos_token_id]
    last = -1
    for i, m in enumerate(messages):
        detail = m.get("train_detail")
        train = bool(detail) if detail is not None else train_on_inputs or m["role"] in roles_to_train
        if not train and train_on_eos != "all":
            continue
        start, end = turn_bounds(i)
        if start == -1:
            continue
        if train and detail:
            for k, trained in enumerate(detail_offsets(tokenizer, m["content"], detail)):
                if trained and start + k < len(ids):
                    labels[start + k] = ids[start + k]
        elif train:
            labels[start:end] = ids[start:end]
        eot = next((k for k in range(end, len(ids)) if ids[k] in eot_ids), -1)
        if eot != -1 and eot - end <= 3:
            last = eot
            if train_on_eos == "all" or (train_on_eos == "turn" and train):
                labels[eot] = ids[eot]
    if train_on_eos == "last" and last != -1:
        labels[last] = ids[last]
    return ids, labels


def main():
    tokenizer = PreTrainedTokenizerFast.from_pretrained("test/data/hf_tokenizer")
    templates = {"llama3": (make_chat_fixtures.TEMPLATES["llama3"]["source"], ["<|eot_id|>"]),
                 "plain": (PLAIN, [])}
    cases = []
    for name, (template, eot_tokens) in templates.items():
        for train_on_eos in ["turn", "last", "all", "none"]:
            for train_on_inputs in [False, True]:
                for roles in [["assistant"], ["user", "system"]]:
                    ids, labels = axolotl_example(tokenizer, template, CONVERSATION, roles, train_on_eos,
                                                  eot_tokens, train_on_inputs)
                    cases.append({"template": name, "roles_to_train": roles, "train_on_eos": train_on_eos,
                                  "train_on_inputs": train_on_inputs, "input_ids": ids, "labels": labels})
    detail_cases = []
    for name, (template, eot_tokens) in templates.items():
        ids, labels = axolotl_example(tokenizer, template, DETAIL_CONVERSATION, ["assistant"], "turn", eot_tokens, False)
        detail_cases.append({"template": name, "input_ids": ids, "labels": labels})
    path = pathlib.Path("test/data/chat/axolotl_masks.json")
    fixture = {"tokenizer": "test/data/hf_tokenizer", "messages": CONVERSATION,
               "templates": {name: {"source": t, "eot_tokens": e} for name, (t, e) in templates.items()},
               "cases": cases, "detail_messages": DETAIL_CONVERSATION, "detail_cases": detail_cases}
    path.write_text(json.dumps(fixture, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
