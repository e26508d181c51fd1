"""`python -m grader collect PATH`: submissions from a folder or an LMS zip into submitted/.

Into one assignment's folders: submitted/<student>/<assignment>/. A file's path inside PATH names
the student (--student-pattern, a regular expression with a group `student`; by default the first
folder, or the file name up to its first "_"). Colab's and browsers' renamings are undone: "Copy of
hw14_lifelong_learning.ipynb", "hw14_lifelong_learning (1).ipynb". A student's only notebook is
taken whatever its name, unless it is named as another assignment's notebook or defines none of this
assignment's answers: one download may hold several assignments, and a lesson must never be graded
as another. The files are copied as they
are; repairing them is autograde's job.

PATH is hostile input: only regular files inside it are read (links are listed, never followed),
what is read is bounded, only the file chosen for each student is read, and a student id must be a
plain folder name. Entry paths are never used to write.
"""
from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from io import BufferedReader
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, cast

from .assignments import ASSIGNMENTS, source_of
from .parts import parts_of
from .repair import MAX_BYTES  # one notebook, as expanded: what repair would refuse is not worth taking

if TYPE_CHECKING:
    from .course import Course

Opener = Callable[[], IO[bytes]]  # () -> a binary file: an entry's file in the folder or the zip

DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.@-]+)[/_]"
# --student-pattern NAME for an LMS's own layout. Moodle names each submission's folder
# "<full name>_<participant id>_assignsubmission_file_": the id is the last number before
# "_assignsubmission_" in the first folder, whatever the display name holds ("Eve_12345" too).
LMS_PATTERNS = {"moodle": r"^[^/]*_(?P<student>\d+)_assignsubmission_[a-z]+_/"}
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # with fullmatch: "alice\n" is no id
MAX_ENTRIES = 20_000  # in a zip: an LMS export of a large course holds a few thousand
MAX_TOTAL = 4 << 30   # bytes of all the notebooks taken: a few GB bounds the disk a zip can fill
# What a damaged file or zip entry raises when read (zlib, lzma and bz2 streams, encryption, CRCs).
READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


class CollectError(Exception):
    """PATH or the pattern cannot be used; the message says what to do."""


@dataclass
class Collected:
    students: dict[str, str] = field(default_factory=dict)          # student -> the file taken
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was not taken)
    notes: list[str] = field(default_factory=list)


@dataclass
class Entry:
    rel: str                    # path inside PATH, "/"-separated, as PATH spells it
    mtime: datetime | None      # None where the file's date is impossible
    size: int = 0               # as the folder or the zip's header says; reads are bounded regardless
    open: Opener | None = None  # () -> a binary file; None for a refused entry
    refused: str = ""           # why it is not even a candidate (a link, not a regular file)


def shown(text: str) -> str:
    """`text` with each non-printable character as \\xNN, \\uNNNN or \\UNNNNNNNN: a file name printed
    raw could retitle, clear or rewrite the TA's terminal (ESC, bidi overrides, newlines)."""
    return "".join(c if c.isprintable() else
                   f"\\x{ord(c):02x}" if ord(c) < 0x100 else
                   f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text)


def notebook_name(filename: str) -> str:
    """The notebook's name without the renamings of Colab, browsers and LMSs."""
    stem = PurePosixPath(filename).name
    stem = re.sub(r"\.ipynb$", "", stem, flags=re.I)
    stem = re.sub(r"^(copy of\s+)+", "", stem, flags=re.I)
    return re.sub(r"(\s*\(\d+\)|-\d+)+$", "", stem)


def assignment_named(rel: str) -> str | None:
    """The assignment whose notebook the file `rel` is named as (renamings undone), or None."""
    name = notebook_name(rel)
    return next((a for a, notebook in ASSIGNMENTS.items() if name.endswith(Path(notebook).stem)), None)


def utc(make: Callable[[], datetime]) -> datetime | None:
    """make(), or None where the metadata names an impossible date (month 0, year 33658)."""
    try:
        return make()
    except (ValueError, OverflowError, OSError):
        return None


def open_regular(full: str) -> BufferedReader:
    # O_NOFOLLOW: a link swapped in since the walk is refused; O_NONBLOCK: a FIFO cannot hang us.
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("not a regular file")
    return os.fdopen(fd, "rb")


def folder_entries(root: Path) -> Iterator[Entry]:
    def rel(full: str) -> str:
        return Path(full).relative_to(root).as_posix()

    errors: list[OSError] = []
    for folder, subfolders, files in os.walk(root, onerror=errors.append, followlinks=False):
        subfolders.sort()
        for name in subfolders:
            if os.path.islink(os.path.join(folder, name)):  # os.walk lists them but does not enter them
                yield Entry(rel(os.path.join(folder, name)), None, refused="a symbolic link, not a folder: not taken")
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
            except OSError as err:  # not `e`, which mypy would confuse with the loop's `e` over `errors` below
                yield Entry(rel(full), None, refused=f"cannot be read ({err.strerror})")
                continue
            if stat.S_ISLNK(st.st_mode):
                yield Entry(rel(full), None, refused="a symbolic link, not a file: not taken")
            elif not stat.S_ISREG(st.st_mode):
                yield Entry(rel(full), None, refused="not a regular file: not taken")
            else:
                mtime = utc(partial(datetime.fromtimestamp, st.st_mtime, timezone.utc))
                yield Entry(rel(full), mtime, st.st_size, partial(open_regular, full))
    for e in errors:
        if Path(e.filename) == root:
            raise CollectError(f"{root} cannot be read ({e.strerror})")
        yield Entry(rel(e.filename), None, refused=f"a folder that cannot be read ({e.strerror})")


def zip_entries(zf: zipfile.ZipFile) -> Iterator[Entry]:
    for info in zf.infolist():
        if stat.S_ISLNK(info.external_attr >> 16):
            yield Entry(info.filename, None, refused="a symbolic link, not a file: not taken")
        elif not info.is_dir():
            mtime = utc(partial(datetime, *info.date_time, tzinfo=timezone.utc))
            yield Entry(info.filename, mtime, info.file_size, partial(zf.open, info))


@contextmanager
def listing(path: Path) -> Iterator[list[Entry]]:
    """The entries of the folder or zip at `path`; their open() works inside the `with`."""
    if path.is_dir():
        yield list(folder_entries(path))
    elif path.is_file() and zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise CollectError(f"{path} cannot be read as a zip ({shown(str(e))}): download it again") from None
        with zf:
            if len(zf.infolist()) > MAX_ENTRIES:
                raise CollectError(f"{path} holds {len(zf.infolist()):,} entries; collect takes zips of at most "
                                   f"{MAX_ENTRIES:,}: split it, or extract it and collect the folder")
            yield list(zip_entries(zf))
    elif path.exists():
        raise CollectError(f"{path} is neither a folder nor a zip file: pass the folder or the LMS's zip of "
                           "submissions")
    else:
        raise CollectError(f"{path} does not exist")


def read(entry: Entry, limit: int) -> bytes:
    """At most limit + 1 bytes: one more than allowed says the file is too large, whatever its header claims."""
    with cast(Opener, entry.open)() as f:  # only refused entries have no open(), and they are never read
        return f.read(limit + 1)


@dataclass(frozen=True)
class Candidate:
    """One file of PATH as the rules see it."""
    entry: Entry
    student: str | None    # what the pattern's group `student` matched, None where it did not match
    source: str            # the path up to the end of the student id: one LMS submission's folder or name
    assignment: str        # the assignment being collected


def path_parts(rel: str) -> list[str]:
    return re.split(r"[/\\]", rel)  # zips made on Windows may use backslashes


def escapes(c: Candidate) -> str | None:
    if c.entry.rel.startswith(("/", "\\")) or any(p in (".", "..") for p in path_parts(c.entry.rel)):
        return "an absolute path or one through . or ..: not taken"
    return None


def refused(c: Candidate) -> str | None:
    return c.entry.refused or None


def not_a_notebook(c: Candidate) -> str | None:
    return None if c.entry.rel.lower().endswith(".ipynb") else "not a notebook (.ipynb)"


def names_no_student(c: Candidate) -> str | None:
    names_no_one = "/" not in c.entry.rel and c.student is not None and any(  # "hw14_lifelong_learning.ipynb"
        Path(n).stem.startswith(c.student + "_") for n in ASSIGNMENTS.values())
    return "no student id in its path (see --student-pattern)" if not c.student or names_no_one else None


def not_an_id(c: Candidate) -> str | None:  # it becomes a folder name: no "..", "/", NUL or look-alikes
    if c.student is None or STUDENT_ID.fullmatch(c.student):
        return None
    return (f"student id '{c.student}' is not 1 to 64 letters, digits and . _ @ - starting with a letter or digit: "
            "not taken")


def another_assignment(c: Candidate) -> str | None:
    other = assignment_named(c.entry.rel)
    if other in (None, c.assignment):
        return None
    return f"named as assignment {other}'s notebook: collect it with --assignment {other}"


def too_large(c: Candidate) -> str | None:
    return f"larger than {MAX_BYTES >> 20} MB: not taken" if c.entry.size > MAX_BYTES else None


# What refuses a file before its student's files are compared, in order: the first that applies is printed.
FILE_RULES = (escapes, refused, not_a_notebook, names_no_student, not_an_id, another_assignment, too_large)


def candidate(entry: Entry, student_of: re.Pattern[str], assignment: str) -> Candidate:
    m = student_of.search(entry.rel)
    student = m.group("student") if m else None
    return Candidate(entry, student or None,  # a student implies a match
                     entry.rel[:cast(re.Match[str], m).end("student")] if student else "", assignment)


def refusal(c: Candidate) -> str | None:
    """Why the file is not taken (the first rule of FILE_RULES that applies), or None."""
    return next((why for why in map(lambda rule: rule(c), FILE_RULES) if why), None)


def one_submission(student: str, files: list[Candidate]) -> str | None:
    """Why none of a student's files is taken when they come from different LMS submissions (two display
    names with one id, or a name that imitates the LMS's layout), else None: never "the newest wins"."""
    sources = sorted({c.source for c in files})
    if len(sources) == 1:
        return None
    return (f"{len(sources)} different submissions map to student id {student} ({', '.join(sources)}): none is "
            "taken; find the student in the LMS, and anchor --student-pattern to its layout (see the README)")


def chosen_file(student: str, files: list[Candidate], target: str) -> tuple[Candidate | None, list[tuple[str, str]]]:
    """(the file taken or None, [(file, why not taken)]) among one submission's notebooks."""
    named = [c for c in files if notebook_name(c.entry.rel).endswith(target)]
    if not named and len(files) > 1:
        return None, [(c.entry.rel, f"{student} has several notebooks and none is {target}.ipynb") for c in files]
    chosen = max(named or files, key=lambda c: c.entry.mtime or EARLIEST)
    return chosen, [(c.entry.rel, f"{student} submitted a newer or better-named notebook ({chosen.entry.rel})")
                    for c in files if c is not chosen]


def read_refusal(c: Candidate, data: bytes, room: int, answers: list[str], named: bool) -> str | None:
    """Why a chosen file's bytes are not taken, or None."""
    if len(data) > MAX_BYTES:
        return f"larger than {MAX_BYTES >> 20} MB: not taken"
    if len(data) > room:
        return f"the notebooks taken before it fill the {MAX_TOTAL >> 30} GB allowed in all: not taken"
    if not named and not any(f"{kind} {name}(".encode() in data for name in answers for kind in ("def", "class")):
        # named as no assignment: one download may hold another lesson's under a name of the student's own
        return f"{c.student}'s only notebook holds none of {c.assignment}'s answers ({', '.join(answers)}): not taken"
    return None


def store(course: Course, c: Candidate, data: bytes, result: Collected) -> None:
    dest = course.submitted(cast(str, c.student))  # a chosen file has a student (names_no_student)
    if dest.parent.exists():
        shutil.rmtree(dest.parent)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(data)
    if c.entry.mtime:
        dest.with_name("timestamp.txt").write_text(c.entry.mtime.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    else:
        result.notes.append(f"{c.student}: {c.entry.rel} has an impossible date, so no timestamp was recorded "
                            "(look up the submission time in the LMS)")
    result.students[cast(str, c.student)] = c.entry.rel


def student_pattern(pattern: str) -> re.Pattern[str]:
    pattern = LMS_PATTERNS.get(pattern, pattern)
    try:
        student_of = re.compile(pattern)
    except re.error as e:
        raise CollectError(f"--student-pattern is not a regular expression ({e})") from None
    if "student" not in student_of.groupindex:
        raise CollectError("--student-pattern needs a group named student, e.g. '^(?P<student>[^/]+)/'")
    return student_of


def collect(course: Course, path: str | Path, pattern: str = DEFAULT_PATTERN) -> Collected:
    student_of = student_pattern(pattern)
    target = Path(course.notebook).stem
    # what a notebook of the assignment defines, `def NAME(` or `class NAME(` (its source notebook's parts)
    answers = sorted(p.name for p in parts_of(json.loads(source_of(course.assignment).read_text()))
                     if p.kind == "function")
    result = Collected()
    with listing(Path(path)) as entries:
        found: dict[str, list[Candidate]] = {}  # student -> [Candidate]
        for entry in entries:
            if any(p.startswith(".") and p not in (".", "..") or p == "__MACOSX" for p in path_parts(entry.rel)):
                continue  # the system's own files, never a submission
            c = candidate(entry, student_of, course.assignment)
            why = refusal(c)
            if why:
                result.unmatched.append((entry.rel, why))
            else:
                found.setdefault(cast(str, c.student), []).append(c)  # not refused: it has a student
        total = 0
        for student, files in sorted(found.items()):
            conflict = one_submission(student, files)
            chosen, passed_over = (None, [(c.entry.rel, conflict) for c in files]) if conflict else \
                chosen_file(student, files, target)
            result.unmatched += passed_over
            if chosen is None:
                continue
            named = notebook_name(chosen.entry.rel).endswith(target)
            try:
                data = read(chosen.entry, min(MAX_BYTES, MAX_TOTAL - total))
            except READ_ERRORS as e:
                result.unmatched.append((chosen.entry.rel, f"cannot be read ({e}): not taken"))
                continue
            why = read_refusal(chosen, data, MAX_TOTAL - total, answers, named)
            if why:
                result.unmatched.append((chosen.entry.rel, why))
                continue
            total += len(data)
            store(course, chosen, data, result)
            if not named:
                result.notes.append(f"{student}: took '{PurePosixPath(chosen.entry.rel).name}' as {course.notebook} "
                                    "(their only notebook)")
    return result
