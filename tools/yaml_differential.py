#!/usr/bin/env python3
"""Random config texts loaded by PyYAML, as Axolotl's yaml.safe_load loads a config, and by
llm_train's loader (train/config_fields.h's read_config_yaml, through the yaml_load helper), every
difference printed.

Three kinds of text: plain scalars built from the pieces YAML 1.1's resolvers read (signs, bases,
underscores, sexagesimal colons, yes/no/on/off, nulls, .inf/.nan), whose type and value must
agree; multi-line strings (literal and folded blocks with every chomping and indentation
indicator, single- and double-quoted scalars spanning lines, plain ones), whose text must agree;
and documents of nested block maps and lists with flow collections, tags, anchors, aliases and
merge keys, whose structure must agree. A text PyYAML refuses must be refused by ours too.
Timestamps are left out (no config key takes a date; ours reads them as strings), as are map
keys that Python's dict would merge (true and 1 are one key there).

    tools/yaml_differential.py --load build/yaml_load [--seed 1] [--cases 2000]
Exit 0: no difference; 1: differences (printed); 77: this python3 has no PyYAML.
"""
import json
import math
import random
import sys

from differential import cases_and_answers, finish

try:
    import yaml
except ImportError:
    print("yaml_differential: this python3 has no PyYAML (pip's, or Debian's python3-yaml): skipped")
    sys.exit(77)

SCALAR_PIECES = ["0", "1", "7", "9", "_", ".", "e", "E", "+", "-", ":", "x", "o", "b", "a", "f", "inf", "nan", "Inf",
                 "NaN", ".inf", ".NaN", "true", "True", "TRUE", "yes", "No", "on", "OFF", "y", "n", "null", "Null",
                 "~", "0x", "0o", "0b", "00", "12", "59", "60", " "]
WORDS = ["a", "b c", "x:y", "#h", "it's", 'q"q', "\\n", "é", "  lead", "trail  ", "\t", "", "- d", "[e]", "{f}", "%g",
         "@", "`", "a # c", "&x", "*y", "!z", "|", ">"]
# A tab alone on a line a block has left: PyYAML refuses it ("cannot start any token"), yaml-cpp
# reads on; no config writes one, and ours keeps yaml-cpp's reading.
BLOCK_WORDS = [w for w in WORDS if w != "\t"]
VALUES = ["1", "0x1f", "010", "1.5", "1e5", "yes", "No", "~", "null", "", "'q'", '"d"', "a b", "1:30", ".inf", "-.5",
          "+1", "0b11", "x", "true", "'it''s'", '"\\t"', "a:b", "- x", "#", "!!str 1", "!!int '7'", "! 3", "&a v",
          "*a", "[1, 2]", "{a: 1}", "{}", "[]"]
KEYS = ["a", "b", "c", "1", "'k'", "~", "a b", "x-y", "0.5"]


class Texts:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def scalar(self):
        pick = self.rng.choice
        while True:
            t = "".join(pick(SCALAR_PIECES) for _ in range(self.rng.randint(1, 5))).strip()
            if t and not t.startswith(("-", ":", "?", "#")) and ": " not in t and not t.endswith(":"):
                return "k: " + t + "\n"

    def block(self):
        rng, pick = self.rng, self.rng.choice
        indent = pick([2, 4])
        header = pick(["|", ">"]) + pick(["", "-", "+"]) + pick(["", "", str(indent)])
        text = f"k: {header}\n"
        for _ in range(rng.randint(1, 5)):
            line = pick(BLOCK_WORDS) + pick(["", " w", "  w"]) if rng.random() > 0.2 else ""
            text += (" " * indent + line if line else " " * rng.randint(0, indent + 1)) + "\n"
        text += pick(["", " " * indent + "more\n", " " * (indent + 2) + "deeper\n"])
        return text + pick(["", "\n", "\n\n", "z: 1\n", "\n  \nz: 1\n", "# c\n"])

    def quoted(self):
        pick = self.rng.choice
        quote = pick(["'", '"'])
        parts = []
        for _ in range(self.rng.randint(1, 4)):
            word = pick(WORDS + ["\\t", "\\x41", "\\u00e9", "\\\\", "''"])
            parts.append(word.replace("'", "''") if quote == "'" else word.replace('"', '\\"'))
        separator = pick([" ", "\n  ", "\n\n  ", "\n  \n  ", "\n \t \n  "])
        return f"k: {quote}{separator.join(parts)}{quote}\n" + pick(["", "z: 1\n"])

    def plain(self):
        pick = self.rng.choice
        parts = [pick(["a", "b c", "x-y", "é", "1", "true"]) for _ in range(self.rng.randint(1, 4))]
        return "k: " + pick([" ", "\n  ", "\n\n  ", "\n  \n  "]).join(parts) + "\n" + pick(["", "z: 1\n"])

    def node(self, depth, indent):
        rng, pick = self.rng, self.rng.choice
        r = rng.random()
        if depth > 2 or r < 0.4:
            return " " + pick(VALUES) + "\n"
        pad, out = " " * indent, "\n"
        if r < 0.7:
            for key in [pick(KEYS) for _ in range(rng.randint(1, 3))]:
                out += f"{pad}{key}:" + self.node(depth + 1, indent + 2)
            return out
        for _ in range(rng.randint(1, 3)):
            out += f"{pad}-" + self.node(depth + 1, indent + 2)
        return out

    def document(self):
        body = ""
        for key in self.rng.sample(["k1", "k2", "k3", "base", "<<"], self.rng.randint(1, 4)):
            value = self.node(0, 2)
            if key == "base" and self.rng.random() < 0.5:
                value = " &b\n  x: 1\n  y: 2\n"
            if key == "<<":
                value = " *b\n" if "base: &b" in body else " {m: 1}\n"
            body += key + ":" + value
        return body

    def text(self):
        return self.rng.choice([self.scalar, self.block, self.quoted, self.plain, self.document, self.document])()


def as_json(value):
    """PyYAML's document in yaml_load's JSON spelling; None where it holds a date (left out)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k if isinstance(k, str) else json.dumps(k)] = as_json(v)
        return out
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return "BIGINT"
    if hasattr(value, "isoformat"):
        raise ValueError("a timestamp")
    return value


def main():
    seed, texts, ours = cases_and_answers(__doc__, "--load", "the yaml_load helper (built beside llm_train)",
                                          lambda seed: Texts(seed).text, lambda text: text)
    differences = refused = compared = 0
    for text, got in zip(texts, ours):
        try:
            want_ok, want = True, as_json(yaml.safe_load(text))
        except ValueError:
            continue  # a timestamp
        except yaml.YAMLError as error:
            want_ok, want = False, str(error).splitlines()[0]
        compared += 1
        refused += not want_ok
        if want_ok != got["ok"] or (want_ok and want != got["value"]):
            differences += 1
            print(f"text {text!r}\n  PyYAML {yaml.__version__}: {json.dumps(want)[:400]}\n  llm_train: {json.dumps(got['value'])[:400]}")
    finish("yaml_differential", differences, compared, refused, f"PyYAML {yaml.__version__} (seed {seed})")

if __name__ == "__main__":
    main()
