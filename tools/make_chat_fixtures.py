#!/usr/bin/env python3
"""Writes the chat template fixtures that test_chat checks io/chat_template against, byte for byte.

Each template's Jinja source is rendered by jinja2 as transformers' apply_chat_template does it
(an immutable sandbox with trim_blocks and lstrip_blocks) for a few conversations:
  test/data/chat/llama3_expected.json  Meta-Llama-3-8B-Instruct's chat_template (Axolotl's llama3)
  test/data/chat/chatml_expected.json  Axolotl's chatml template
Each file holds the template source, the jinja2 version and a list of {name, messages, rendered}.
  test/data/chat/jinja_expected.json   test_jinja's cases: tools/jinja_cases.py's feature
                                       templates, and these templates plus Meta's Llama 3.2
                                       Instruct template on the conversations, each rendered by
                                       transformers' own compiled template (or its error)

Run from the repository root (needs jinja2 and transformers): tools/make_chat_fixtures.py [--out test/data/chat]
"""
import argparse
import json
import pathlib

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from transformers.utils.chat_template_utils import _compile_jinja_template

import jinja_cases

# Jinja reads '\n' inside its string literals as a newline, as it does from tokenizer_config.json.
TEMPLATES = {
    "llama3": {
        "source": r"""{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}""",
        "bos_token": "<|begin_of_text|>",
    },
    "chatml": {
        "source": r"""{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}""",
        "bos_token": "",
    },
}


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "system_user_assistant": [
        msg("system", "You are a helpful assistant."),
        msg("user", "What is the capital of France?"),
        msg("assistant", "The capital of France is Paris."),
    ],
    "multi_turn": [
        msg("user", "Count to three."),
        msg("assistant", "1, 2, 3."),
        msg("user", "Now backwards, please!"),
        msg("assistant", "3, 2, 1.\n\nDone."),
    ],
    # Jinja's trim is Python's str.strip: ASCII whitespace and Unicode spaces (NBSP, U+3000, ...).
    "whitespace_to_trim": [
        msg("system", "  \n\tBe brief.\n\n"),
        msg("user", "\u00a0\u3000 Why is the sky blue?\r\n "),
        msg("assistant", "\u2003Rayleigh scattering.\u2029 \u0085"),
        msg("user", "   "),
        msg("assistant", "inner  spaces   stay\n\nand inner newlines too"),
    ],
    "unicode": [
        msg("user", "Traduis : « naïve café » — 日本語、中文、한국어 🎉👩‍💻"),
        msg("assistant", "Ωmega: “ok” ✓ 🇫🇷"),
    ],
    # A marker typed in user text is rendered as typed; the tokenizer must keep it as text.
    "marker_in_content": [
        msg("user", "Please print <|eot_id|> and <|im_end|> literally."),
        msg("assistant", "<|eot_id|><|im_end|>"),
    ],
    "single_message": [msg("assistant", "Hello.")],
}


def jinja_fixture():
    """test_jinja's cases: each template with its variables and what transformers renders."""
    cases = [(name, source, variables) for name, source, variables in jinja_cases.FEATURES]
    for template_name, template in TEMPLATES.items():
        for case, messages in CONVERSATIONS.items():
            cases.append((f"{template_name}/{case}", template["source"],
                          {"messages": messages, "bos_token": template["bos_token"], "add_generation_prompt": False}))
    llama3_2 = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "date_string": "26 Jul 2024"}
    for case, messages in CONVERSATIONS.items():
        cases.append((f"llama3_2/{case}", jinja_cases.LLAMA3_2, {"messages": messages, **llama3_2}))
    cases.append(("llama3_2/tools_in_system", jinja_cases.LLAMA3_2,
                  {"messages": jinja_cases.CONVERSATION, "custom_tools": [jinja_cases.TOOL],
                   "tools_in_user_message": False, "add_generation_prompt": True, **llama3_2}))
    cases.append(("llama3_2/tools_in_user_message", jinja_cases.LLAMA3_2,
                  {"messages": jinja_cases.CONVERSATION, "custom_tools": [jinja_cases.TOOL], **llama3_2}))
    tool_call = {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather",
                                                                  "arguments": {"city": "Paris", "days": 2}}}]}
    cases.append(("llama3_2/tool_call", jinja_cases.LLAMA3_2,
                  {"messages": jinja_cases.CONVERSATION[:2] + [tool_call, {"role": "tool", "content": {"sky": "clear"}}],
                   **llama3_2}))
    out = []
    for name, source, variables in cases:
        case = {"name": name, "template": source, "variables": variables}
        try:
            case["rendered"] = _compile_jinja_template(source).render(**variables)
        except Exception as e:  # noqa: BLE001 - the fixture records that rendering fails
            case["error"] = f"{type(e).__name__}: {e}"
        out.append(case)
    return {"jinja2": jinja2.__version__, "cases": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="test/data/chat")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    for name, template in TEMPLATES.items():
        compiled = env.from_string(template["source"])
        cases = [{"name": case, "messages": messages,
                  "rendered": compiled.render(messages=messages, bos_token=template["bos_token"],
                                              add_generation_prompt=False)}
                 for case, messages in CONVERSATIONS.items()]
        fixture = {"template": template["source"], "bos_token": template["bos_token"],
                   "jinja2": jinja2.__version__, "cases": cases}
        path = out / f"{name}_expected.json"
        path.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(cases)} conversations)")
    path = out / "jinja_expected.json"
    fixture = jinja_fixture()
    path.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(fixture['cases'])} cases)")


if __name__ == "__main__":
    main()
