"""Writes cl_course/selfcheck_values.json: the reference answers on the self-checks' published
fixture and the values of every typical mistake there. Run it after changing the fixture, the
reference code, the legitimate variants or the typical mistakes (cl_course/teaching/blanks.py):
  python -m grader.selfcheck_values
"""
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cl_course
from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS

OUT = Path(cl_course.__file__).with_name("selfcheck_values.json")  # package data, where selfcheck.stored_values reads


def as_lists(name: str, function: Callable[..., Any], inputs: dict[str, Any]) -> dict[str, Any]:
    return {n: t.tolist() for n, t in selfcheck.result_values(name, function, inputs).items()}


def compute(seed: int = selfcheck.FIXTURE_SEED) -> dict[str, dict[str, Any]]:
    values = {}
    for name, blank in BLANKS.items():
        inputs = blank.fixture(seed)
        values[name] = {"expected": as_lists(name, blank.reference, inputs),
                        "variants": [as_lists(name, variant, inputs) for variant, _ in blank.variants],
                        "mistakes": [{"message": message, "values": as_lists(name, wrong, inputs)}
                                     for wrong, message in blank.mistakes]}
    return values


def main() -> None:
    OUT.write_text(json.dumps(compute()) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
