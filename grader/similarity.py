"""`python -m grader similarity`: how much of each pair of students' own code is the same. A signal for a
human to look at, side by side, never a grade.

What is compared: each submission's function and class blanks (after repair; not the quiz), as one document per
student. The released stubs and the reference solutions are boilerplate: what the notebook gave every student,
or what the course's own answer is, says nothing about two students, so their fingerprints are removed.

How: winnowing (Schleimer, Wilkerson & Aiken 2003, the algorithm of MOSS), written here on Python's own
tokenizer because copydetect, which does the same, is not in the offline package mirror CI installs from. The
code is tokenized; comments and layout are dropped; every name a student chooses becomes N (keywords,
builtins and attributes after "." stay), every string S, so renaming variables changes nothing. Each run of
K tokens is hashed and each window of W hashes keeps its smallest: a shared run of K + W - 1 tokens or more is
always found, whatever surrounds it, so reordering independent lines keeps every line's own matches. A pair's
score is the share of the smaller document's fingerprints found in the other.
"""
from __future__ import annotations

import builtins
import csv
import hashlib
import html
import io
import itertools
import json
import keyword
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .inert import plain_text
from .repair import RepairError, grade_id, repair, source_of

if TYPE_CHECKING:
    from .course import Course

Notebook = dict[str, Any]  # as json (or nbformat) reads it
Lines = tuple[int, int]    # the first and last line of the code a fingerprint came from

K, W = 8, 4            # tokens per k-gram, k-grams per window: matches of 11 tokens or more are always found
DOCUMENT_CHARS = 200_000  # of one student's code: a huge cell costs tokenizing time, not memory
KEPT_NAMES = set(keyword.kwlist) | set(dir(builtins))


@dataclass(frozen=True)
class Fingerprint:
    student: str
    code: str             # the student's blanks, one after another
    hashes: dict[int, Lines]  # hash -> the code's lines (first, last) it came from, for the side-by-side view


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float          # shared fingerprints / the smaller document's
    shared: int


def tokens(code: str) -> list[tuple[str, int]]:
    """[(normalised token, line)] of Python source; what does not tokenize is compared as it is, word by word."""
    out, after_dot = [], False
    try:
        for t in tokenize.generate_tokens(io.StringIO(code).readline):
            if t.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
                continue
            text = t.string
            if t.type == tokenize.NAME and text not in KEPT_NAMES and not after_dot:
                text = "N"
            elif t.type == tokenize.STRING:
                text = "S"
            out.append((text, t.start[0]))
            after_dot = t.string == "."
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = [(w, n) for n, line in enumerate(code.splitlines(), 1) for w in line.split()]
    return out


def fingerprint(student: str, code: str) -> Fingerprint:
    code = code[:DOCUMENT_CHARS]
    toks = tokens(code)
    grams = [(int.from_bytes(hashlib.blake2b(" ".join(t for t, _ in toks[i:i + K]).encode(), digest_size=8)
                             .digest(), "big"), (toks[i][1], toks[i + K - 1][1])) for i in range(len(toks) - K + 1)]
    kept: dict[int, Lines] = {}
    for i in range(max(len(grams) - W + 1, 1 if grams else 0)):
        h, lines = min(grams[i:i + W], key=lambda g: g[0])
        kept.setdefault(h, lines)
    return Fingerprint(student, code, kept)


def without(fp: Fingerprint, boilerplate: set[int]) -> Fingerprint:
    return Fingerprint(fp.student, fp.code, {h: v for h, v in fp.hashes.items() if h not in boilerplate})


def pairs(fingerprints: Iterable[Fingerprint]) -> list[Pair]:
    """Every pair of students, most similar first."""
    out = []
    for x, y in itertools.combinations(fingerprints, 2):
        shared = len(x.hashes.keys() & y.hashes.keys())
        smaller = min(len(x.hashes), len(y.hashes))
        out.append(Pair(x.student, y.student, shared / smaller if smaller else 0.0, shared))
    return sorted(out, key=lambda p: (-p.score, -p.shared, p.a, p.b))


def blank_ids(release: Notebook) -> list[str]:
    """Grade ids of the released solution cells that hold a function or a class to write."""
    return [grade_id(c) for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
            and any(line.startswith(("def ", "class ")) for line in source_of(c).splitlines())]


def blanks_code(notebook: Notebook, ids: Iterable[str]) -> str:
    by_id = {grade_id(c): source_of(c) for c in notebook["cells"]}
    return "\n\n".join(by_id.get(i, "") for i in ids)


def course_fingerprints(course: Course) -> tuple[list[Fingerprint], list[str]]:
    """([Fingerprint] of every collected submission without the boilerplate, [notes on what was not read])."""
    release = course.release()
    ids = blank_ids(release)
    source = json.loads(course.source_notebook.read_text())
    boilerplate = set(fingerprint("", blanks_code(release, ids)).hashes)
    boilerplate |= set(fingerprint("", blanks_code(source, ids)).hashes)  # the reference solutions
    found, notes = [], []
    for student in course.students():
        try:
            repaired = repair(course.submitted(student).read_bytes(), release)
        except (RepairError, OSError) as e:
            notes.append(f"{student}: not compared ({e})")
            continue
        found.append(without(fingerprint(student, blanks_code(repaired.notebook, ids)), boilerplate))
    return found, notes


def side(fp: Fingerprint, shared: Iterable[int]) -> str:
    """The student's code as HTML lines, those holding a shared fingerprint marked; all text escaped."""
    marked = {n for h in shared for n in range(fp.hashes[h][0], fp.hashes[h][1] + 1)}
    return "\n".join(f"<mark>{html.escape(plain_text(line))}</mark>" if n in marked else html.escape(plain_text(line))
                     for n, line in enumerate(fp.code.splitlines(), 1))


def report_html(assignment: str, ranked: Sequence[Pair], by_student: Mapping[str, Fingerprint],
                threshold: float) -> str:
    above = [p for p in ranked if p.score >= threshold]
    parts = [f"<!DOCTYPE html><meta charset='utf-8'><title>similarity: {html.escape(assignment)}</title>",
             "<style>pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}mark{background:#ffd54f}"
             "td{vertical-align:top;width:50%}</style>",
             f"<h1>Similarity of the students' own code: {html.escape(assignment)}</h1>",
             "<p>A signal for a human, never a grade: shared code can be a study group, a hint in the notebook or "
             "chance. Marked lines hold code that the other submission has too, after names and strings are "
             f"normalised and the notebook's stubs and the reference solutions are removed. {len(above)} of "
             f"{len(ranked)} pairs at or above {threshold:.0%}.</p>"]
    for p in above:
        shared = by_student[p.a].hashes.keys() & by_student[p.b].hashes.keys()
        parts.append(f"<h2>{html.escape(p.a)} and {html.escape(p.b)}: {p.score:.0%} ({p.shared} fingerprints)</h2>"
                     f"<table><tr><th>{html.escape(p.a)}</th><th>{html.escape(p.b)}</th></tr><tr>"
                     f"<td><pre>{side(by_student[p.a], shared)}</pre></td>"
                     f"<td><pre>{side(by_student[p.b], shared)}</pre></td></tr></table>")
    return "\n".join(parts) + "\n"


def similarity(course: Course, out: str | Path, threshold: float = 0.5) -> tuple[list[Pair], list[str]]:
    """similarity.csv (every pair, most similar first) and similarity.html (the pairs at or above `threshold`,
    side by side) in `out`; (the ranked pairs, notes)."""
    found, notes = course_fingerprints(course)
    ranked = pairs(found)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "similarity.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_a", "student_b", "score", "shared_fingerprints"])
        writer.writerows([p.a, p.b, f"{p.score:.3f}", p.shared] for p in ranked)
    (out / "similarity.html").write_text(report_html(course.assignment, ranked, {f.student: f for f in found},
                                                     threshold))
    return ranked, notes
