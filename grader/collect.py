"""`python -m grader collect PATH`: submissions from a folder or an LMS zip into submitted/.

A file's path inside PATH names the student (--student-pattern, a regular expression with a
group `student`; by default the first folder, or the file name up to its first "_"). Colab's and
browsers' renamings are undone: "Copy of hw14_lifelong_learning.ipynb",
"hw14_lifelong_learning (1).ipynb". A student's only notebook is taken whatever its name. The
files are copied as they are; repairing them is autograde's job.
"""
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .course import NOTEBOOK

DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.@-]+)[/_]"
STUDENT_ID = re.compile(r"^[A-Za-z0-9._@-]+$")


class CollectError(Exception):
    """PATH or the pattern cannot be used; the message says what to do."""


@dataclass
class Collected:
    students: dict = field(default_factory=dict)   # student -> the file taken
    unmatched: list = field(default_factory=list)  # (file, why it was not taken)
    notes: list = field(default_factory=list)


def notebook_name(filename):
    """The notebook's name without the renamings of Colab, browsers and LMSs."""
    stem = PurePosixPath(filename).name
    stem = re.sub(r"\.ipynb$", "", stem, flags=re.I)
    stem = re.sub(r"^(copy of\s+)+", "", stem, flags=re.I)
    return re.sub(r"(\s*\(\d+\)|-\d+)+$", "", stem)


def entries(path):
    """(relative path, read(), modification time) of every file under a folder or in a zip."""
    path = Path(path)
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            yield f.relative_to(path).as_posix(), f.read_bytes, datetime.fromtimestamp(f.stat().st_mtime, timezone.utc)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield (info.filename, lambda i=info: zf.read(i),
                           datetime(*info.date_time, tzinfo=timezone.utc))
    elif path.exists():
        raise CollectError(f"{path} is neither a folder nor a zip file: pass the folder or the LMS's zip of submissions")
    else:
        raise CollectError(f"{path} does not exist")


def collect(course, path, pattern=DEFAULT_PATTERN):
    try:
        student_of = re.compile(pattern)
    except re.error as e:
        raise CollectError(f"--student-pattern is not a regular expression ({e})") from None
    if "student" not in student_of.groupindex:
        raise CollectError("--student-pattern needs a group named student, e.g. '^(?P<student>[^/]+)/'")
    target = Path(NOTEBOOK).stem
    found = {}  # student -> [(exact name?, time, relative path, data)]
    result = Collected()
    for rel, read, mtime in entries(path):
        parts = PurePosixPath(rel).parts
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if not rel.lower().endswith(".ipynb"):
            result.unmatched.append((rel, "not a notebook (.ipynb)"))
            continue
        m = student_of.search(rel)
        if not m or not m.group("student"):
            result.unmatched.append((rel, "no student id in its path (see --student-pattern)"))
            continue
        student = m.group("student")
        if "/" not in rel and target.startswith(student + "_"):  # "hw14_lifelong_learning.ipynb" names no one
            result.unmatched.append((rel, "no student id in its path (see --student-pattern)"))
            continue
        if not STUDENT_ID.match(student):
            result.unmatched.append((rel, f"student id {student!r} has characters a folder name cannot hold"))
            continue
        exact = notebook_name(rel).endswith(target)
        found.setdefault(student, []).append((exact, mtime, rel, read()))
    for student, files in sorted(found.items()):
        named = [f for f in files if f[0]]
        if not named and len(files) > 1:
            for _, _, rel, _ in files:
                result.unmatched.append((rel, f"{student} has several notebooks and none is {NOTEBOOK}"))
            continue
        exact, mtime, rel, data = max(named or files, key=lambda f: f[1])
        for _, _, other, _ in files:
            if other != rel:
                result.unmatched.append((other, f"{student} submitted a newer or better-named notebook ({rel})"))
        if not exact:
            result.notes.append(f"{student}: took {PurePosixPath(rel).name!r} as {NOTEBOOK} (their only notebook)")
        dest = course.submitted(student)
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir(parents=True)
        dest.write_bytes(data)
        dest.with_name("timestamp.txt").write_text(mtime.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        result.students[student] = rel
    return result
