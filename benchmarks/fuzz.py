"""Mutation fuzzing of specs and `--set` overrides, in-process, for a fixed time.

Each case takes a seed spec (docs/language.md's examples, specs/, benchmarks/specs/ and the
invalid corpus), mutates up to three of its tokens (delete, duplicate, swap, replace one by a
token of the language or an extreme number such as `1e309`, `-0`, `99999999999999999999`), adds
up to three random `--set` overrides, and does what `growdsl check` does: parse, apply the
overrides, lower, shape-check and validate everything a run needs (`growdsl.api.check`). The
claim under test: a case ends in a `Spec` that checks or in a GrowDSLError, never in any other
exception. Every other exception is reported with its type, message, where it was raised and the
smallest case that hit it (the case is also written to `--out`).

    python benchmarks/fuzz.py [--minutes 5] [--seed 0] [--out fuzz-failures]

The report gives cases per second (one process, the machine otherwise as it is); CI keeps the
hypothesis tests of `tests/lang/test_fuzz.py`, which fuzz the parser alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lang"))
from lang_examples import example_specs  # noqa: E402

from growdsl import api, lang  # noqa: E402
from growdsl.errors import GrowDSLError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKENS = re.compile(r'"[^"\n]*"|\d+(?:\.\d+)?(?:e-?\d+)?[A-Za-z]*|[A-Za-z_]\w*|\.\.|>=|<=|\s+|\S')
PIECES = [
    "model", "block", "data", "train", "grow", "search", "export", "branch", "repeat", "choice", "as",
    "every", "at", "when", "until", "epochs", "params", "flops", "steps", "{", "}", "(", ")", "[", "]",
    "|", ",", ":", "..", ">", ">=", "classes", "relu", "linear", "conv", "flatten", "split", "firefly",
    "frac", "eps", "wider", "deeper", "on", "lr", "test", "val", "n", "k", "stride", "padding",
    "0", "1", "-1", "-0", "0.0", "1e309", "-1e309", "1e-320", "99999999999999999999", "2k", "1M",
    "8..128", "128..8", "0..0", '"x"', '""', "nan", "inf", "\n", " ",
]  # fmt: skip
KEYS = [
    "train.epochs", "train.batch", "train.optimizer", "train.schedule", "train.loss", "train.seed",
    "train.device", "data", "data.test", "data.val", "data.n", "data.noise", "data.normalize",
    "data.classes", "search", "search.population", "train.bogus",
]  # fmt: skip
VALUES = [
    "0", "1", "-1", "3", "0.5", "1.5", "1e309", "nan", "99999999999999999999", "true", "none", '"x"',
    "sgd(lr: 0.1)", "adam(lr: -1)", "adamw(lr: 1e309)", "cosine", "step(every: 0)", "mse",
    "cross_entropy", "cpu", "cuda:99", "digits", "spirals(n: 1)", "wave", "csv", "mnist", "[1, 2]", "(",
    "random", "pbt(population: 0)",
]  # fmt: skip


def seeds() -> list[str]:
    texts = [text for _, text in example_specs()]
    for folder in ("benchmarks/specs", "tests/corpus/invalid"):
        texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / folder).glob("*.grow"))]
    return texts


def mutate(text: str, rng: random.Random) -> str:
    tokens = TOKENS.findall(text) or [""]
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        i = rng.randrange(len(tokens))
        op = rng.randrange(5)
        if op == 0 and len(tokens) > 1:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, tokens[rng.randrange(len(tokens))])
        elif op == 2:
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens[i] = rng.choice(PIECES)
        else:
            tokens.insert(i, rng.choice(PIECES) + " ")
    return "".join(tokens)


def overrides(rng: random.Random) -> list[str]:
    return [f"{rng.choice(KEYS)}={rng.choice(VALUES)}" for _ in range(rng.choice((0, 0, 1, 2, 3)))]


def check_case(text: str, sets: list[str]) -> None:
    """What `growdsl check --set ...` does with the text of a file."""
    spec = lang.parse_text(text, "fuzz.grow")
    api.check(lang.apply_overrides(spec, sets) if sets else spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    pool = seeds()
    found: dict[tuple[str, str], tuple[str, list[str], str]] = {}  # (type, where) -> smallest case
    cases = accepted = crashed = 0
    start = time.perf_counter()
    end = start + args.minutes * 60
    while time.perf_counter() < end:
        text, sets = mutate(rng.choice(pool), rng), overrides(rng)
        cases += 1
        try:
            check_case(text, sets)
            accepted += 1
        except GrowDSLError:
            pass
        except Exception as e:  # the claim under test: nothing else ever escapes
            crashed += 1
            frame = traceback.extract_tb(e.__traceback__)[-1]
            key = (type(e).__name__, f"{Path(frame.filename).name}:{frame.lineno}")
            if key not in found or len(text) < len(found[key][0]):
                found[key] = (text, sets, f"{type(e).__name__}: {str(e)[:200]}")
    elapsed = time.perf_counter() - start

    print(
        f"# python {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} cores, seed {args.seed}"
    )
    print(
        f"{cases:,} cases in {elapsed:.0f} s: {cases / elapsed:,.0f} cases/s; {accepted:,} checked ok, "
        f"{cases - accepted - crashed:,} refused with a GrowDSLError, {crashed:,} raised another exception "
        f"({len(found)} distinct)"
    )
    if found:
        args.out.mkdir(parents=True, exist_ok=True)
    for n, ((kind, where), (text, sets, message)) in enumerate(sorted(found.items()), start=1):
        case = args.out / f"case{n}.grow"
        case.write_text(text, encoding="utf-8")
        sets_shown = " ".join(f"--set '{s}'" for s in sets)
        print(f"- {kind} at {where}: {message}\n  reproduce: growdsl check {case} {sets_shown}".rstrip())
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
