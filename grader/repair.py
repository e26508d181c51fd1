"""Put a downloaded submission back into the released notebook's shape.

Colab drops or rewrites cell metadata (nbgrader's grade ids with it), duplicates and adds cells,
renames files and changes the kernelspec. Cells are matched to the released ones by grade id, then
by content (the names a solution cell defines, or the first line of any other cell), then by
position between matched neighbours. The result is the released notebook with the student's
sources in it, the student's extra cells kept in place, and a note for every repair.
"""
import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

Notebook = dict[str, Any]  # nbformat 4 (or 3, as submitted) as plain JSON
Cell = dict[str, Any]      # one notebook cell as plain JSON


class RepairError(Exception):
    """The file is not a notebook at all; the message says what it is."""


@dataclass
class Repaired:
    notebook: Notebook
    notes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # grade_id -> why it is graded 0


def source_of(cell: Cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def grade_id(cell: Cell) -> Any:  # a str in a released notebook; in a submission, whatever JSON is there
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None


MAX_BYTES = 50 << 20  # a notebook with its outputs (the grader keeps only sources)
MAX_CELLS = 2000      # the released notebook has about 70


def as_text(value: object) -> tuple[str | None, bool]:
    """A cell's source as text any writer can encode (None for what is not text); and whether it changed."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    if not isinstance(value, str):
        return None, False
    clean = value.encode("utf-8", "replace").decode("utf-8")  # unpaired surrogates become "?"
    return clean, clean != value


def worksheet_cells(nb: Notebook) -> list[Any]:
    """The cells of an nbformat 3 notebook (old Jupyter), which keeps them in worksheets."""
    sheets = nb.get("worksheets")
    if not (isinstance(sheets, list) and all(isinstance(w, dict) and isinstance(w.get("cells"), list) for w in sheets)):
        raise RepairError("an nbformat 3 notebook (old Jupyter) without worksheets of cells: open it in Jupyter "
                          "or Colab, save it, and submit again")
    return [c for w in sheets for c in w["cells"]]


def upgraded(cell: Cell) -> Cell:
    """An nbformat 3 cell in nbformat 4's shape: code was in "input", titles in "heading" cells.
    By hand, not nbformat.convert: that also converts and validates the outputs, and one odd output
    fails the whole notebook."""
    if cell.get("cell_type") == "code":
        return dict(cell, source=cell.get("input", ""))
    if cell.get("cell_type") == "heading":
        level, title = cell.get("level"), cell.get("source", "")
        hashes = "#" * level if isinstance(level, int) and 1 <= level <= 6 else "#"
        return dict(cell, cell_type="markdown", source=[f"{hashes} ", *(title if isinstance(title, list) else [title])])
    return cell


def read_notebook(data: bytes) -> tuple[Notebook, list[Cell], list[str]]:
    """The submission's cells as plain dicts with text sources, and notes on what was changed; or
    RepairError naming what the file is instead, in words the student can act on."""
    if len(data) > MAX_BYTES:
        raise RepairError(f"the file is {len(data) / 2**20:.0f} MB; the grader takes notebooks up to "
                          f"{MAX_BYTES >> 20} MB: clear the outputs (Edit > Clear all outputs), save and submit again")
    if not data.strip():
        raise RepairError("the file is empty")
    try:
        nb = json.loads(data)
    except UnicodeDecodeError:
        raise RepairError("not a notebook: the file is binary, not JSON") from None
    except RecursionError:
        raise RepairError("not a notebook: its JSON is nested thousands of levels deep") from None
    except ValueError as e:
        raise RepairError(f"not a notebook: the file is not valid JSON ({str(e).split(':')[0]})") from None
    old = isinstance(nb, dict) and nb.get("nbformat") == 3
    found = worksheet_cells(nb) if old else nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(found, list):
        raise RepairError("not a notebook: JSON without a list of cells (nbformat 4 expected)")
    if len(found) > MAX_CELLS:  # before any work per cell
        raise RepairError(f"the notebook has {len(found):,} cells; the grader takes at most {MAX_CELLS:,}: "
                          "delete the extra cells and submit again")
    cells, ignored, replaced = [], 0, False
    for c in found:
        if old and isinstance(c, dict):
            c = upgraded(c)
        source, changed = as_text(c.get("source", "")) if isinstance(c, dict) else (None, False)
        if source is None or c.get("cell_type") not in ("code", "markdown", "raw"):
            ignored += 1
            continue
        replaced |= changed
        metadata = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
        cells.append({"cell_type": c["cell_type"], "metadata": metadata, "source": source})
    if not cells:
        raise RepairError("the notebook has no cells")
    notes = ["converted from nbformat 3"] if old else []
    if ignored:
        notes.append(f"ignored {ignored} cells that are not notebook cells or whose source is not text")
    if replaced:
        notes.append("characters that are not text (lone surrogates) were replaced by '?'")
    return nb, cells, notes


# Indented by spaces and tabs only: ^\s* would rescan a run of blank lines from each of its lines.
DEF = re.compile(r"^[^\S\n]*def\s+(\w+)\s*\(", re.M)
CLASS = re.compile(r"^[^\S\n]*class\s+(\w+)\s*[(:]", re.M)


def wanted_names(cell: Cell) -> set[str]:
    """What a released solution cell asks for: its class (whose methods' names other classes share), else its
    function, or the quiz answers its comment names."""
    text = source_of(cell)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return (set(CLASS.findall(text)) or set(DEF.findall(text))) | set(re.findall(r"\bq\d\d\b", first))


def defined_names(cell: Cell) -> set[str]:
    text = source_of(cell)
    return set(DEF.findall(text)) | set(CLASS.findall(text)) | set(re.findall(r"^(\w+)\s*=", text, re.M))


def first_line(cell: Cell) -> str | None:
    lines = [line.strip() for line in source_of(cell).splitlines() if line.strip()]
    return lines[0] if lines else None


def is_solution(cell: Cell) -> bool:
    return bool(cell["metadata"].get("nbgrader", {}).get("solution"))


class Matcher:
    match: dict[int, int]       # released index -> submitted index
    used: set[int]              # submitted indices matched
    how: dict[int, str]         # released index -> "grade id", "content" or "position"
    duplicates: dict[str, int]  # grade id -> how many submitted cells have it

    def __init__(self, released: list[Cell], submitted: list[Cell]):
        self.released, self.submitted = released, submitted
        self.match, self.used, self.how, self.duplicates = {}, set(), {}, {}
        # read once: each released cell is compared with every submitted one
        self.names = [defined_names(s) for s in submitted]
        self.lines = [{line.strip() for line in source_of(s).splitlines()} for s in submitted]

    def same_content(self, released: Cell, j: int) -> bool:
        if released["cell_type"] != self.submitted[j]["cell_type"]:
            return False
        if is_solution(released):
            return bool(wanted_names(released) & self.names[j])
        return first_line(released) in self.lines[j]

    def by_grade_id(self) -> None:
        for i, cell in enumerate(self.released):
            gid = grade_id(cell)
            found = [j for j, s in enumerate(self.submitted) if gid and grade_id(s) == gid
                     and s["cell_type"] == cell["cell_type"] and j not in self.used]
            if found:
                self.match[i], self.how[i] = found[-1], "grade id"  # of duplicates, the last one ran last
                self.used.update(found)
                if len(found) > 1:
                    self.duplicates[gid] = len(found)

    def by_content(self) -> None:
        for i, cell in enumerate(self.released):
            if i in self.match:
                continue
            after = max((j for r, j in self.match.items() if r < i), default=-1)
            found = [j for j in range(len(self.submitted)) if j not in self.used and self.same_content(cell, j)]
            if found:  # a solution defined twice counts as it ran last; other cells match in order
                j = found[-1] if is_solution(cell) else next((j for j in found if j > after), found[0])
                self.match[i], self.how[i] = j, "content"
                self.used.add(j)

    def by_position(self) -> None:
        for i, cell in enumerate(self.released):
            if i in self.match:
                continue
            before = max((r for r in self.match if r < i), default=None)
            after = min((r for r in self.match if r > i), default=None)
            low = self.match[before] if before is not None else -1
            high = self.match[after] if after is not None else len(self.submitted)
            first = before + 1 if before is not None else 0
            gap_released = list(range(first, after if after is not None else len(self.released)))
            gap_submitted = [j for j in range(low + 1, high) if j not in self.used]
            if len(gap_released) == len(gap_submitted):
                j = gap_submitted[gap_released.index(i)]
                if self.submitted[j]["cell_type"] == cell["cell_type"]:
                    self.match[i], self.how[i] = j, "position"
                    self.used.add(j)


# cl_course's modules that moved into its layers' subpackages (the teaching layer, the lessons' helpers). A notebook
# downloaded before imports them from cl_course itself: its set-up cell would raise ImportError there, and every
# name it imports after that line (lesson 2's Strategy, Replay, ...) would be missing from the student's classes.
# The forms rewritten are the released notebooks' (from cl_course import x, y as z; from cl_course.x import ...).
MOVED = {"blanks": "teaching", "exercises": "teaching", "fixtures": "teaching", "mistakes": "teaching",
         "replay_mistakes": "teaching", "selfcheck": "teaching", "lesson2": "lessons", "notebook": "lessons"}
FROM_PACKAGE = re.compile(r"^(?P<indent>[ \t]*)from cl_course import (?P<names>\w+(?: as \w+)?(?:[ \t]*,[ \t]*\w+"
                          r"(?: as \w+)?)*)[ \t]*(?P<comment>#.*)?$", re.M)
FROM_MODULE = re.compile(r"^(?P<indent>[ \t]*)from cl_course\.(?P<module>\w+)(?=[ .])", re.M)


def with_moved_imports(source: str) -> tuple[str, set[str]]:
    """A code cell's source with its imports of moved modules pointed at where they are, and those modules."""
    moved: set[str] = set()

    def split(match: re.Match[str]) -> str:
        names = [n.strip() for n in match["names"].split(",")]
        layers = {n: MOVED.get(n.split()[0], "") for n in names}  # "": still in cl_course itself
        if not any(layers.values()):
            return match[0]
        moved.update(n.split()[0] for n, layer in layers.items() if layer)
        lines = [f"{match['indent']}from cl_course{'.' * bool(layer)}{layer} import "
                 f"{', '.join(n for n in names if layers[n] == layer)}" for layer in dict.fromkeys(layers.values())]
        return "\n".join(lines) + (f"  {match['comment']}" if match["comment"] else "")

    def prefix(match: re.Match[str]) -> str:
        if match["module"] not in MOVED:
            return match[0]
        moved.add(match["module"])
        return f"{match['indent']}from cl_course.{MOVED[match['module']]}.{match['module']}"

    return FROM_MODULE.sub(prefix, FROM_PACKAGE.sub(split, source)), moved


def clean_cell(cell: Cell, metadata: dict[str, Any], source: str, cell_id: str) -> Cell:
    out = {"cell_type": cell["cell_type"], "id": cell_id, "metadata": metadata, "source": source}
    if cell["cell_type"] == "code":
        out.update(outputs=[], execution_count=None)
    return out


@dataclass
class Tally:
    """What repairing changed, for the notes."""
    restored_metadata: int = 0
    restored: int = 0
    edited_tests: list[str] = field(default_factory=list)
    found_by: dict[str, list[str]] = field(default_factory=dict)  # how a cell was matched -> the grade ids found so


def merged_source(i: int, cell: Cell, s: Cell | None, matcher: Matcher, tally: Tally, out: Repaired) -> str:
    """The source the repaired notebook keeps of released cell `cell` (number i), matched to the student's `s` or
    None, and what that changed."""
    gid, meta, source = grade_id(cell), cell["metadata"].get("nbgrader", {}), source_of(cell)
    if s is None:
        if meta.get("solution"):
            out.missing[gid] = f"its cell ({gid}) was not found in the submission"
        else:
            tally.restored += 1
        return source
    tally.restored_metadata += bool(gid and grade_id(s) != gid)
    if meta.get("locked"):
        if source_of(s).strip() != source.strip():
            tally.edited_tests.append(gid)
        return source
    if matcher.how[i] != "grade id" and meta.get("solution"):
        tally.found_by.setdefault(matcher.how[i], []).append(gid)
    return source_of(s)


def repair_notes(tally: Tally, matcher: Matcher, extras: dict[int, list[int]], nb: Notebook, release: Notebook,
                 out: Repaired) -> None:
    for how, gids in tally.found_by.items():
        out.notes.append(f"found by {how}: {', '.join(gids)}")
    if tally.restored_metadata:
        out.notes.append(f"restored the nbgrader metadata of {tally.restored_metadata} cells (Colab drops it)")
    for gid, n in matcher.duplicates.items():
        out.notes.append(f"cell {gid} appears {n} times; graded the last one")
    if tally.edited_tests:
        out.notes.append(f"locked cells edited, the released version used: {', '.join(tally.edited_tests)}")
    if tally.restored:
        out.notes.append(f"{tally.restored} released cells were missing and were put back")
    n_extra = sum(map(len, extras.values()))
    if n_extra:
        out.notes.append(f"kept {n_extra} cells of the student's own")
    kernel = nb.get("metadata", {}).get("kernelspec") if isinstance(nb.get("metadata"), dict) else None
    if kernel != release["metadata"].get("kernelspec"):
        out.notes.append("restored the kernelspec")
    for why in out.missing.values():
        out.notes.append(f"graded 0: {why}")


def repair(data: bytes, release: Notebook) -> Repaired:
    """A Repaired notebook from a submission's bytes and the released notebook (a dict)."""
    nb, submitted, read_notes = read_notebook(data)
    released = release["cells"]
    matcher = Matcher(released, submitted)
    matcher.by_grade_id()
    matcher.by_content()
    matcher.by_position()
    out = Repaired(notebook={"cells": [], "metadata": copy.deepcopy(release["metadata"]), "nbformat": 4,
                             "nbformat_minor": release.get("nbformat_minor", 5)}, notes=read_notes)
    anchor_of = {j: r for r, j in matcher.match.items()}
    j: int | None  # a submitted index below; matcher.match.get(i) in the loop over the released cells
    extras: dict[int, list[int]] = {}  # released index (-1: before the first cell) -> the student's own cells after it
    for j in range(len(submitted)):
        if j not in matcher.used:
            extras.setdefault(max((anchor_of[k] for k in anchor_of if k < j), default=-1), []).append(j)

    def add_extras(r: int) -> None:
        for j in extras.get(r, []):
            out.notebook["cells"].append(clean_cell(submitted[j], {}, source_of(submitted[j]), f"extra-{j}"))

    tally = Tally()
    add_extras(-1)
    for i, cell in enumerate(released):
        j = matcher.match.get(i)
        source = merged_source(i, cell, None if j is None else submitted[j], matcher, tally, out)
        cell_id = cell.get("id", f"cell-{i}")
        out.notebook["cells"].append(clean_cell(cell, copy.deepcopy(cell["metadata"]), source, cell_id))
        add_extras(i)
    moved: set[str] = set()
    for cell in out.notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["source"], found = with_moved_imports(cell["source"])
            moved |= found
    if moved:
        out.notes.append("imports of " + ", ".join(f"cl_course.{m}" for m in sorted(moved)) + " pointed at "
                         + ", ".join(f"cl_course.{MOVED[m]}.{m}" for m in sorted(moved))
                         + " (the notebook was downloaded before the course package moved them)")
    repair_notes(tally, matcher, extras, nb, release, out)
    return out
