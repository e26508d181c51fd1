"""`python -m grader similarity` at course sizes: fingerprinting and all pairs of N synthetic submissions.

Each synthetic submission is one of the course's own answers to HW14's six blanks (the reference solutions, or the
plain loops of loop_answers.py) with its names changed and a few of its lines replaced by lines of its own, so that
no two are the same. Fingerprinting is linear in N, comparing all pairs is N^2 / 2 set intersections.

    .venv/bin/python benchmarks/similarity.py            # N = 125, 250, 500, 1000
"""
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.repair import source_of  # noqa: E402
from grader.similarity import fingerprint, pairs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def bases():
    notebook = json.loads((ROOT / "notebooks" / "hw14_lifelong_learning.ipynb").read_text())
    reference = "\n\n".join(source_of(c) for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
                            and source_of(c).lstrip().startswith("def "))
    loops = (ROOT / "benchmarks" / "loop_answers.py").read_text().split('"""', 2)[2]
    return [reference, loops]


def synthetic(base, rng, k):
    names = sorted(set(re.findall(r"\b[a-z_][a-z0-9_]*\b", base)) - {"def", "return", "for", "in", "if", "else",
                                                                     "import", "torch", "zip", "range", "len"})
    renamed = {n: f"{n}_{rng.randrange(1000)}" for n in rng.sample(names, len(names) // 3)}
    lines = [re.sub(r"\b[a-z_][a-z0-9_]*\b", lambda m: renamed.get(m.group(0), m.group(0)), line)
             for line in base.splitlines()]
    for _ in range(5):  # lines of its own
        i = rng.randrange(len(lines))
        indent = re.match(r"\s*", lines[i]).group(0)
        lines.insert(i, f"{indent}note_{k} = {rng.randrange(10**6)} * len(str({rng.randrange(100)}))")
    return "\n".join(lines)


def main():
    rng = random.Random(0)
    base = bases()
    print("| N | fingerprinting (s) | all pairs (s) | pairs | top score |")
    print("|---|---|---|---|---|")
    for n in (125, 250, 500, 1000):
        codes = [synthetic(base[i % 2], rng, i) for i in range(n)]
        start = time.perf_counter()
        found = [fingerprint(f"s{i}", code) for i, code in enumerate(codes)]
        middle = time.perf_counter()
        ranked = pairs(found)
        end = time.perf_counter()
        print(f"| {n:,} | {middle - start:.2f} | {end - middle:.2f} | {len(ranked):,} | {ranked[0].score:.2f} |")


if __name__ == "__main__":
    main()
