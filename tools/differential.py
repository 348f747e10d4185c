"""What tools/jinja_differential.py and tools/yaml_differential.py share: their command line, the
random cases they generate, the helper (built beside llm_train) that reads every case as one JSON
line and answers each with one, and the closing count."""
import argparse
import json
import subprocess
import sys


def cases_and_answers(doc, helper_flag, helper_help, generator, encode):
    """Parses --seed, --cases and the helper's flag; returns the cases `generator(seed)` makes
    (one each call) with the helper's answers, each a parsed JSON line, in the same order."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(helper_flag, dest="helper", required=True, help=helper_help)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=2000)
    args = parser.parse_args()
    make = generator(args.seed)
    cases = [make() for _ in range(args.cases)]
    lines = "".join(json.dumps(encode(case)) + "\n" for case in cases)
    answers = subprocess.run([args.helper], input=lines, capture_output=True, text=True, check=True).stdout
    return args.seed, cases, [json.loads(line) for line in answers.splitlines() if line]


def finish(name, differences, compared, refused, reference):
    """Prints the count and exits 1 on any difference."""
    print(f"{name}: {differences} difference(s) in {compared} cases, {refused} of them refused by {reference}")
    sys.exit(1 if differences else 0)
