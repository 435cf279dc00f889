"""Check an answer to one of the book's exercises with the study's own tests.

    python -m inbol_utils.tools.exercises trust_score [book/exercises/trust_score.py]
    make exercise EX=trust_score [FILE=...]

The exercises (book/exercises.md) ask for three functions at the heart of the study: Trust, the
certainty of a preference pair, and the CA-DPO loss. Their tests in tests/ take the function from
the `implementation` fixture (tests/conftest.py), which gives the package's own unless pytest
runs with `--exercise NAME=FILE`: then it gives the one in FILE, and only that exercise's tests
run. So an answer passes exactly the checks the study's own code passes, among them the CA-DPO
loss against TRL's.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..runner.parameters import PROJECT_ROOT

EXERCISES = {"trust_score": "tests/test_metrics.py", "pair_certainty": "tests/test_dpo.py",
             "cadpo_loss": "tests/test_dpo.py"}  # exercise -> the test module that holds its tests
TEMPLATES = PROJECT_ROOT / "book" / "exercises"


def check(name: str, answer: str | Path) -> int:
    """Run exercise `name`'s tests against the function of that name in `answer`; returns
    pytest's exit status (0: every test passed)."""
    if name not in EXERCISES:
        raise SystemExit(f"no exercise {name!r}; the exercises are {', '.join(EXERCISES)}")
    answer = Path(answer).resolve()
    if not answer.is_file():
        raise SystemExit(f"no file {answer}: copy {TEMPLATES / (name + '.py')} and write {name} in it")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--exercise={name}={answer}",
               str(PROJECT_ROOT / EXERCISES[name])]
    status = subprocess.run(command, cwd=PROJECT_ROOT).returncode
    print(f"{name}: {'every test passed' if status == 0 else 'not yet: the failures above say what differs'}"
          f" ({answer})", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.exercises",
                                     description="Check an exercise's answer with the study's own tests.")
    parser.add_argument("name", choices=list(EXERCISES), help="the exercise: the function it asks for")
    parser.add_argument("answer", nargs="?", help="the file with the answer (default: its template in "
                                                  "book/exercises/)")
    args = parser.parse_args(argv)
    return check(args.name, args.answer or TEMPLATES / f"{args.name}.py")


if __name__ == "__main__":
    sys.exit(main())
