"""What a released notebook says where a solution was: nbgrader's generate_assignment puts the same bare
`raise NotImplementedError()` in every solution region; here each stub says in one line what to write
there: the quiz answers it stands for, or the function or method whose body it is.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nbgrader.preprocessors import ClearSolutions

from .release import REGION

if TYPE_CHECKING:
    from nbformat import NotebookNode

QUESTION = re.compile(r"^\s*(q\d\d)\s*=", re.M)
OWNER = re.compile(r"^(?P<indent>[ \t]*)(?:def|class)\s+(?P<name>\w+)")


def owner(source: str, start: int, indent: str) -> str | None:
    """'function', 'Class.method' or 'Class': the innermost def or class around position `start` of `source`
    (whose lines there are indented by `indent`), or None at the top level."""
    names: list[str] = []
    for line in reversed(source[:start].splitlines()):
        found = OWNER.match(line)
        if found and len(found["indent"]) < len(indent):
            names.insert(0, found["name"])
            indent = found["indent"]
    return ".".join(names) or None


def stub_message(source: str, region: re.Match[str]) -> str:
    """The one-line message of the stub that replaces the solution `region` (a REGION match in `source`)."""
    questions = QUESTION.findall(region["body"])
    if questions:
        return (f"answer {', '.join(questions)} here, in place of this line: each a set of option letters, "
                f'e.g. {questions[0]} = {{"a", "c"}}')
    name = owner(source, region.start(), region["indent"])
    if name:
        return f"{name} is not written yet: write its body here, in place of this line"
    return "write your answer here, in place of this line"


def named_stubs(source: str) -> str:
    """`source` with each solution region replaced by nbgrader's stub, its NotImplementedError saying what to
    write there."""
    def stub(region: re.Match[str]) -> str:
        if region["kind"] != "SOLUTION":
            return region[0]
        indent, end = region["indent"], "\n" if region[0].endswith("\n") else ""
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError({stub_message(source, region)!r}){end}"
    return REGION.sub(stub, source)


class ClearSolutionsNamingWhatToWrite(ClearSolutions):
    """nbgrader's ClearSolutions, with named_stubs' stubs in code cells."""

    def _replace_solution_region(self, cell: NotebookNode, language: str) -> bool:
        replaced = False
        if cell.cell_type == "code":
            source = cell.source
            cell.source = named_stubs(source)
            replaced = cell.source != source
        # what is left (markdown answers, a region named in a way REGION does not read) gets nbgrader's stub
        return super()._replace_solution_region(cell, language) or replaced
