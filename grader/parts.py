"""The graded parts of the assignment, read from the source notebook's test cells.

  selfcheck.check("fisher_diagonal", ...)      -> a function part: the grader runs the student's
                                                  fisher_diagonal on hidden fixtures
  selfcheck.check_answer(globals(), "q01", ..)  -> an answer part, keyed by the hidden
  assert set(q01) == {"a", "d"}                   test's set
"""
import ast
from dataclasses import dataclass
from typing import Any, cast

Notebook = dict[str, Any]  # as json (or nbformat) reads it
Cell = dict[str, Any]


class PartsError(Exception):
    """A test cell the grader cannot interpret; the message names it."""


@dataclass(frozen=True)
class Part:
    grade_id: str
    points: float
    kind: str             # "function" or "answer"
    name: str             # the function or the answer variable
    key: frozenset[str] | None = None  # the right set of letters (answer parts)


def calls(tree: ast.AST, attribute: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == attribute and n.args]


def answer_key(tree: ast.AST, name: str) -> frozenset[str] | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], ast.Eq):
            left, right = node.left, node.comparators[0]
            if isinstance(left, ast.Call) and ast.unparse(left) == f"set({name})":
                return frozenset(ast.literal_eval(right))
    return None


def part_of(cell: Cell) -> Part:
    meta = cell["metadata"]["nbgrader"]
    grade_id, points = meta["grade_id"], float(meta.get("points", 0))
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise PartsError(f"test cell {grade_id} is not valid Python ({e.msg})") from None
    for call in calls(tree, "check"):
        if isinstance(call.args[0], ast.Constant):
            # a str in every test cell the course has (a constant of another type is not refused here)
            return Part(grade_id, points, "function", cast(str, call.args[0].value))
    for call in calls(tree, "check_answer"):
        if len(call.args) > 1 and isinstance(call.args[1], ast.Constant):
            name = cast(str, call.args[1].value)  # as above
            key = answer_key(tree, name)
            if key is None:
                raise PartsError(f"test cell {grade_id} has no hidden `assert set({name}) == {{...}}` answer key")
            return Part(grade_id, points, "answer", name, key)
    raise PartsError(f"test cell {grade_id} calls neither selfcheck.check nor selfcheck.check_answer")


def parts_of(notebook: Notebook) -> list[Part]:
    """[Part] of every graded code cell of a source notebook (a dict as nbformat reads it)."""
    return [part_of(c) for c in notebook["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("grade")]
