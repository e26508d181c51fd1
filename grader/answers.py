"""Quiz answers read from the submission's source, never from its process: a set of letters is
written out (`q01 = {"a", "d"}`), so the grader reads the literal in the last cell that assigns it,
and the run only has to say that this cell ran to its end. Nothing the student's code writes at
run time can change an answer.

Only cells that name a quiz answer are parsed, and only up to QUIZ_CELL_CHARS: parsing costs about
1.8 GB per million statements, in the TA's own process, so a huge cell costs its author the answers
in it (with a message), never the batch."""
import ast
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from .repair import source_of

Notebook = dict[str, Any]  # as json (or nbformat) reads it


@dataclass
class Answer:
    cell: int                  # the notebook cell with the last assignment
    line: int                  # the assignment's last line in that cell: it ran if the cell raised below it
    letters: list[str] | None  # sorted letters, or None when the value is not a set of letters
    problem: str | None = None  # what the value is instead


def literal_letters(node: ast.expr) -> tuple[list[str], None] | tuple[None, str]:
    """(sorted letters, None) for a literal str or set/list/tuple of str, else (None, what it is)."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, "an expression, not letters written out (write e.g. {\"a\", \"c\"})"
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(v, str) for v in value):
        return sorted(set(value)), None
    kind = type(value).__name__
    return None, f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a set of letters"


QUIZ_CELL_CHARS = 50_000  # the quiz's cells hold a few hundred characters; 50,000 parse in ~20 MB


def unread_assignments(i: int, source: str, names: Collection[str]) -> dict[str, Answer]:
    """{name: Answer} for the top-level assignments of `names` in a cell too large to parse."""
    found, alternatives = {}, "|".join(map(re.escape, sorted(names)))
    for m in re.finditer(rf"^({alternatives})\s*(?::[^=\n]*)?\|?=(?!=)", source, re.M):
        found[m.group(1)] = Answer(i, source.count("\n", 0, m.start()) + 1, None,
                                   f"in a cell of {len(source):,} characters, more than the {QUIZ_CELL_CHARS:,} the "
                                   "grader reads for quiz answers: write your answers in the quiz's own cells")
    return found


def quiz_answers(notebook: Notebook, names: Collection[str]) -> dict[str, Answer]:
    """{name: Answer} for each of `names` assigned at the top level of a code cell."""
    found: dict[str, Answer] = {}
    if not names:
        return found
    mentions = re.compile(rf"\b(?:{'|'.join(map(re.escape, sorted(names)))})\b")
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = source_of(cell)
        if not mentions.search(source):
            continue  # it cannot assign an answer
        if len(source) > QUIZ_CELL_CHARS:
            found |= unread_assignments(i, source, names)
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # it cannot run, so it assigns nothing
        for statement in tree.body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    letters, problem = literal_letters(value) if isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                        else (None, "changed in place, not written out")
                    # ast.parse gives every statement its end_lineno (typeshed's int | None is for nodes made by hand)
                    found[target.id] = Answer(i, cast(int, statement.end_lineno), letters, problem)
    return found
