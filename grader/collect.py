"""`python -m grader collect PATH`: submissions from a folder or an LMS zip into submitted/.

A file's path inside PATH names the student (--student-pattern, a regular expression with a
group `student`; by default the first folder, or the file name up to its first "_"). Colab's and
browsers' renamings are undone: "Copy of hw14_lifelong_learning.ipynb",
"hw14_lifelong_learning (1).ipynb". A student's only notebook is taken whatever its name. The
files are copied as they are; repairing them is autograde's job. Only regular files are taken
(links are never followed), at most 50 MB each, only the one chosen per student is read, and a
zip's entries are read with a bound whatever its headers say. Every file not taken is listed with
the reason, its name printed with escapes.
"""
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .course import NOTEBOOK
from .repair import MAX_BYTES

DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.@-]+)[/_]"
# a folder name on every system: starts with a letter or digit, never "." or "..", no control characters
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_ENTRIES = 20000  # files in one zip: an LMS export of a large course holds a few thousand


class CollectError(Exception):
    """PATH or the pattern cannot be used; the message says what to do."""


@dataclass
class Collected:
    students: dict = field(default_factory=dict)   # student -> the file taken
    unmatched: list = field(default_factory=list)  # (file, why it was not taken)
    notes: list = field(default_factory=list)


@dataclass
class Entry:
    """A file under PATH or in the zip. read() returns at most MAX_BYTES + 1 bytes."""
    path: str
    read: object
    mtime: datetime | None
    problem: str | None = None  # why it is never taken


def shown(text):
    """A name as the terminal should print it: characters that are not printable (terminal escapes,
    bidi overrides, line separators) as Python escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def notebook_name(filename):
    """The notebook's name without the renamings of Colab, browsers and LMSs."""
    stem = PurePosixPath(filename).name
    stem = re.sub(r"\.ipynb$", "", stem, flags=re.I)
    stem = re.sub(r"^(copy of\s+)+", "", stem, flags=re.I)
    return re.sub(r"(\s*\(\d+\)|-\d+)+$", "", stem)


def read_file(path):
    """At most MAX_BYTES + 1 bytes of a regular file, never through a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError("not a regular file")
        return f.read(MAX_BYTES + 1)


def folder_entries(root):
    for folder, dirs, files in os.walk(root):  # links to folders are listed in dirs and never entered
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            rel = Path(path).relative_to(root).as_posix()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                yield Entry(rel, None, None, "a symbolic link, not a file: links are never followed")
            elif name in files and not stat.S_ISREG(info.st_mode):
                yield Entry(rel, None, None, "not a regular file")
            elif name in files:
                yield Entry(rel, lambda p=path: read_file(p), datetime.fromtimestamp(info.st_mtime, timezone.utc))
        dirs.sort()


def zip_entries(archive):
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise CollectError(f"{archive} holds {len(infos):,} entries; collect takes zips of at most {MAX_ENTRIES:,}: "
                               "split it, or extract it and collect the folder")
        for info in infos:
            if info.is_dir():
                continue
            try:
                mtime = datetime(*info.date_time, tzinfo=timezone.utc)
            except ValueError:  # an impossible date in the zip's own records (month 0): the file is still good
                mtime = None
            if stat.S_ISLNK(info.external_attr >> 16):
                yield Entry(info.filename, None, mtime, "a symbolic link, not a file: links are never followed")
                continue

            def read(i=info):  # only the file chosen for a student is read, after the listing
                with zipfile.ZipFile(archive) as z, z.open(i) as f:  # headers can lie: read one byte past the cap
                    return f.read(MAX_BYTES + 1)
            yield Entry(info.filename, read, mtime)


def entries(path):
    """Every file under a folder or in a zip, as Entry."""
    path = Path(path)
    if path.is_dir():
        yield from folder_entries(path)
    elif zipfile.is_zipfile(path):
        yield from zip_entries(path)
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
    found = {}  # student -> [Entry, exact name?]
    result = Collected()
    for entry in entries(path):
        rel = entry.path
        parts = PurePosixPath(rel).parts
        if any(p.startswith(".") and p not in (".", "..") or p == "__MACOSX" for p in parts):
            continue
        if entry.problem:
            result.unmatched.append((rel, entry.problem))
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
        if not STUDENT_ID.fullmatch(student):
            result.unmatched.append((rel, f"student id {shown(student)!r} is not one: an id starts with a letter or "
                                          "digit and holds only letters, digits and . _ @ - (at most 64)"))
            continue
        found.setdefault(student, []).append((entry, notebook_name(rel).endswith(target)))
    for student, files in sorted(found.items()):
        named = [f for f in files if f[1]]
        if not named and len(files) > 1:
            for entry, _ in files:
                result.unmatched.append((entry.path, f"{student} has several notebooks and none is {NOTEBOOK}"))
            continue
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        entry, exact = max(named or files, key=lambda f: f[0].mtime or oldest)
        for other, _ in files:
            if other is not entry:
                result.unmatched.append((other.path, f"{student} submitted a newer or better-named notebook "
                                                     f"({entry.path})"))
        try:
            data = entry.read()
        except (OSError, zipfile.BadZipFile, EOFError) as e:  # a damaged entry or a file that changed meanwhile
            result.unmatched.append((entry.path, f"cannot be read ({type(e).__name__}: {e})"))
            continue
        if len(data) > MAX_BYTES:
            result.unmatched.append((entry.path, f"larger than {MAX_BYTES >> 20} MB: not taken (ask {student} to "
                                                 "clear the outputs and submit again)"))
            continue
        if not exact:
            result.notes.append(f"{student}: took {PurePosixPath(entry.path).name!r} as {NOTEBOOK} (their only notebook)")
        if entry.mtime is None:
            result.notes.append(f"{student}: {entry.path!r} has an impossible date in the zip; its time is not recorded")
        dest = course.submitted(student)
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir(parents=True)
        dest.write_bytes(data)
        if entry.mtime is not None:
            dest.with_name("timestamp.txt").write_text(entry.mtime.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        result.students[student] = entry.path
    return result
