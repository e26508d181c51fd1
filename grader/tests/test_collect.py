import os
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from grader import collect as collect_module
from grader.collect import DEFAULT_PATTERN, MAX_BYTES, STUDENT_ID, CollectError, collect, notebook_name, shown
from grader.course import Course
from grader.release import ROOT


@pytest.mark.parametrize("name", ["hw14_lifelong_learning.ipynb", "Copy of hw14_lifelong_learning.ipynb",
                                  "Copy of Copy of hw14_lifelong_learning.ipynb", "hw14_lifelong_learning (1).ipynb",
                                  "hw14_lifelong_learning (1) (2).ipynb", "hw14_lifelong_learning-3.ipynb",
                                  "a/b/Copy of hw14_lifelong_learning (3).IPYNB"])
def test_renamings_are_undone(name):
    assert notebook_name(name) == "hw14_lifelong_learning"


def write(root, rel, data=b"{}", mtime=None):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime:
        os.utime(path, (mtime, mtime))
    return path


def test_a_folder_of_downloads(tmp_path):
    src, course = tmp_path / "downloads", Course(tmp_path / "course")
    write(src, "alice/Copy of hw14_lifelong_learning.ipynb", b"alice")
    write(src, "bob_hw14_lifelong_learning (1).ipynb", b"bob-new", mtime=2_000_000_000)
    write(src, "bob_hw14_lifelong_learning.ipynb", b"bob-old", mtime=1_000_000_000)
    write(src, "carol/whatever I called it.ipynb", b'{"source": "def fisher_diagonal(model, batches):"}')
    write(src, "frank/my lesson 2.ipynb", b'{"source": "class LwF(Strategy): # fisher_diagonal"}')  # another lesson
    write(src, "dave/notes.ipynb")
    write(src, "dave/draft.ipynb")
    write(src, "hw14_lifelong_learning.ipynb")
    write(src, "Copy of hw14_lifelong_learning.ipynb")
    write(src, "erin/hw14_lifelong_learning.pdf")
    write(src, "__MACOSX/alice/._x.ipynb")
    result = collect(course, src)
    assert result.students == {"alice": "alice/Copy of hw14_lifelong_learning.ipynb",
                               "bob": "bob_hw14_lifelong_learning (1).ipynb",
                               "carol": "carol/whatever I called it.ipynb"}
    assert course.submitted("bob").read_bytes() == b"bob-new"
    assert course.submitted("bob").with_name("timestamp.txt").read_text().startswith("2033-05-18")
    assert course.submitted("carol").read_bytes() == b'{"source": "def fisher_diagonal(model, batches):"}'
    why = dict(result.unmatched)
    assert "frank's only notebook holds none of hw14's answers (fisher_diagonal, " in why["frank/my lesson 2.ipynb"]
    assert "newer or better-named" in why["bob_hw14_lifelong_learning.ipynb"]
    assert "none is hw14_lifelong_learning.ipynb" in why["dave/notes.ipynb"]
    assert "no student id" in why["hw14_lifelong_learning.ipynb"]
    assert "no student id" in why["Copy of hw14_lifelong_learning.ipynb"]
    assert "not a notebook" in why["erin/hw14_lifelong_learning.pdf"]
    assert result.notes == ["carol: took 'whatever I called it.ipynb' as hw14_lifelong_learning.ipynb "
                            "(their only notebook)"]


def test_an_lms_zip_and_a_custom_pattern(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("Alice Smith_10001_assignsubmission_file_/Copy of hw14_lifelong_learning.ipynb",
                                    (2026, 11, 20, 9, 30, 0)), b"alice")
        zf.writestr("Bob Jones_10002_assignsubmission_file_/hw14_lifelong_learning.ipynb", b"bob")
    course = Course(tmp_path / "course")
    result = collect(course, archive, r"_(?P<student>\d+)_assignsubmission")
    assert sorted(result.students) == ["10001", "10002"]
    assert course.submitted("10001").read_bytes() == b"alice"
    assert course.submitted("10001").with_name("timestamp.txt").read_text().startswith("2026-11-20 09:30:00")


def test_moodle_ids_come_from_moodles_layout_and_a_shared_id_is_a_conflict(tmp_path):
    src, course = tmp_path / "moodle", Course(tmp_path / "course")
    nb = "hw14_lifelong_learning.ipynb"
    write(src, f"Real Student_12345_assignsubmission_file_/{nb}", b"real", mtime=1_000_000_000)
    # a display name that imitates the layout: Moodle's own id (67890) is the last number before the suffix
    write(src, f"Eve_12345_assignsubmission_file_ x_67890_assignsubmission_file_/{nb}", b"eve")
    write(src, f"Ann Lee_555_assignsubmission_file_/{nb}", b"ann")
    write(src, f"Ann L._555_assignsubmission_file_/{nb}", b"ann too", mtime=2_000_000_000)
    result = collect(course, src, "moodle")
    assert result.students == {"12345": f"Real Student_12345_assignsubmission_file_/{nb}",
                                "67890": f"Eve_12345_assignsubmission_file_ x_67890_assignsubmission_file_/{nb}"}
    assert course.submitted("12345").read_bytes() == b"real"
    why = dict(result.unmatched)
    for folder in ("Ann Lee", "Ann L."):  # two folders, one id: neither is taken, and the TA is told
        assert why[f"{folder}_555_assignsubmission_file_/{nb}"].startswith(
            "2 different submissions map to student id 555 (Ann L._555, Ann Lee_555): none is taken")
    assert not course.submitted("555").exists()


def test_each_rule_refuses_what_it_names(tmp_path):
    from grader.collect import FILE_RULES, Candidate, Entry
    def rule_hit(rel, student="alice", size=10, refused=""):
        c = Candidate(Entry(rel, None, size, refused=refused), student, "alice", "hw14")
        return [rule.__name__ for rule in FILE_RULES if rule(c)]
    assert rule_hit("alice/../x.ipynb") == ["escapes"]
    assert rule_hit("alice/x.ipynb", refused="a symbolic link") == ["refused"]
    assert rule_hit("alice/x.pdf") == ["not_a_notebook"]
    assert rule_hit("x.ipynb", student=None) == ["names_no_student"]
    assert rule_hit("hw14_lifelong_learning.ipynb", student="hw14") == ["names_no_student"]
    assert rule_hit("al ice/x.ipynb", student="al ice") == ["not_an_id"]
    assert rule_hit("alice/lesson2_scenarios_and_replay.ipynb") == ["another_assignment"]
    assert rule_hit("alice/x.ipynb", size=MAX_BYTES + 1) == ["too_large"]
    assert rule_hit("alice/Copy of hw14_lifelong_learning (1).ipynb") == []


@pytest.mark.parametrize("pattern, message", [("(", "not a regular expression"), ("^(\\w+)/", "group named student")])
def test_bad_patterns(tmp_path, pattern, message):
    with pytest.raises(CollectError, match=message):
        collect(Course(tmp_path), tmp_path, pattern)


def test_bad_paths(tmp_path):
    with pytest.raises(CollectError, match="does not exist"):
        collect(Course(tmp_path), tmp_path / "nope")
    (tmp_path / "grades.txt").write_text("x")
    with pytest.raises(CollectError, match="neither a folder nor a zip"):
        collect(Course(tmp_path), tmp_path / "grades.txt")


NB = "hw14_lifelong_learning.ipynb"


def zip_of(tmp_path, members):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return archive


def fake_course(tmp_path):
    """Just enough of a course folder for the CLI's require()."""
    course = Course(tmp_path / "course")
    course.release_notebook.parent.mkdir(parents=True)
    course.release_notebook.write_text("{}")
    course.path("gradebook.db").write_bytes(b"")
    return course


def grader(*args):
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONIOENCODING="utf-8"))


def test_links_are_listed_and_never_followed(tmp_path):
    src, course = tmp_path / "downloads", Course(tmp_path / "course")
    write(src, f"alice/{NB}", b"alice")
    secret = write(tmp_path, f"root-only/{NB}", b"TA_API_TOKEN")
    (src / "mallory").mkdir()
    (src / "mallory" / NB).symlink_to(Path("..") / "alice" / NB)                 # another student's notebook
    (src / "trudy_hw14_lifelong_learning.ipynb").symlink_to(secret)              # a file outside PATH
    (src / "oscar").symlink_to(secret.parent, target_is_directory=True)          # a folder outside PATH
    (src / "walter_hw14_lifelong_learning.ipynb").symlink_to(tmp_path / "gone")  # dangling
    os.mkfifo(src / "peggy_hw14_lifelong_learning.ipynb")                        # would hang a reader
    result = collect(course, src)
    assert result.students == {"alice": f"alice/{NB}"}
    why = dict(result.unmatched)
    for link in (f"mallory/{NB}", "trudy_hw14_lifelong_learning.ipynb", "walter_hw14_lifelong_learning.ipynb"):
        assert why[link] == "a symbolic link, not a file: not taken"
    assert why["oscar"] == "a symbolic link, not a folder: not taken"
    assert why["peggy_hw14_lifelong_learning.ipynb"] == "not a regular file: not taken"
    assert course.students() == ["alice"]
    assert not any(b"TA_API_TOKEN" in p.read_bytes() for p in course.root.rglob("*") if p.is_file())


def test_a_file_that_becomes_a_link_after_the_walk_is_not_read(tmp_path, monkeypatch):
    src, course = tmp_path / "downloads", Course(tmp_path / "course")
    notebook = write(src, f"alice/{NB}", b"alice")
    secret = write(tmp_path, "secret.ipynb", b"TA_API_TOKEN")
    walked = collect_module.folder_entries

    def swap_after_walk(root):
        entries = list(walked(root))
        notebook.unlink()
        notebook.symlink_to(secret)
        return entries

    monkeypatch.setattr(collect_module, "folder_entries", swap_after_walk)
    result = collect(course, src)
    assert result.students == {}
    assert "cannot be read" in dict(result.unmatched)[f"alice/{NB}"]
    assert not course.submitted("alice").exists()


def test_an_impossible_date_loses_only_that_timestamp(tmp_path):
    archive = zip_of(tmp_path, [(zipfile.ZipInfo(f"alice/{NB}", (2026, 0, 1, 0, 0, 0)), b"alice"),  # month 0
                                (zipfile.ZipInfo(f"bob/{NB}", (2026, 11, 20, 9, 30, 0)), b"bob")])
    course = Course(tmp_path / "course")
    result = collect(course, archive)
    assert sorted(result.students) == ["alice", "bob"]
    assert course.submitted("alice").read_bytes() == b"alice"
    assert not course.submitted("alice").with_name("timestamp.txt").exists()
    assert course.submitted("bob").with_name("timestamp.txt").read_text().startswith("2026-11-20 09:30:00")
    assert result.notes == [f"alice: alice/{NB} has an impossible date, so no timestamp was recorded "
                            "(look up the submission time in the LMS)"]


def test_an_impossible_file_time_in_a_folder(tmp_path):
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no tmpfs to keep a time past the year 9999")
    src = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        write(src, f"alice/{NB}", b"alice", mtime=10**12)  # the year 33658: ext4 would clamp it, tmpfs keeps it
        write(src, f"bob/{NB}", b"bob")
        if os.stat(src / "alice" / NB).st_mtime != 10**12:
            pytest.skip("this filesystem clamps file times")
        result = collect(Course(tmp_path / "course"), src)
    finally:
        shutil.rmtree(src)
    assert sorted(result.students) == ["alice", "bob"]
    assert "impossible date" in result.notes[0]


def test_a_zip_bomb_is_not_expanded(tmp_path):
    archive = zip_of(tmp_path, [(f"alice/{NB}", b"alice"), (f"bomb/{NB}", bytes(MAX_BYTES + 1))])
    assert archive.stat().st_size < 1 << 20
    result = collect(Course(tmp_path / "course"), archive)
    assert result.students == {"alice": f"alice/{NB}"}
    assert dict(result.unmatched)[f"bomb/{NB}"] == "larger than 50 MB: not taken"


def test_a_header_that_understates_the_size_is_not_trusted(tmp_path):
    archive = zip_of(tmp_path, [(f"alice/{NB}", b"alice"), (f"liar/{NB}", bytes(2**20))])
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = [i for i in range(len(data)) if data.startswith(signature, i)][1]  # liar's
        struct.pack_into("<I", data, at + offset, 10)  # "10 bytes"
    archive.write_bytes(data)
    result = collect(Course(tmp_path / "course"), archive)
    assert result.students == {"alice": f"alice/{NB}"}
    assert dict(result.unmatched)[f"liar/{NB}"].startswith("cannot be read (Bad CRC-32")


def test_only_the_chosen_file_is_read(tmp_path):
    archive = zip_of(tmp_path, [(f"mallory/hw14_lifelong_learning ({i}).ipynb", bytes(5 << 20))
                                for i in range(20)])  # 100 MB expanded
    tracemalloc.start()
    try:
        result = collect(Course(tmp_path / "course"), archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(result.students) == ["mallory"] and len(result.unmatched) == 19
    assert peak < 30 << 20, peak


def test_a_folder_file_over_the_cap_is_not_read(tmp_path):
    src = tmp_path / "downloads"
    write(src, f"alice/{NB}", b"alice")
    with open(write(src, f"huge/{NB}", b""), "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk used
    result = collect(Course(tmp_path / "course"), src)
    assert result.students == {"alice": f"alice/{NB}"}
    assert dict(result.unmatched)[f"huge/{NB}"] == "larger than 50 MB: not taken"


def test_the_total_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(collect_module, "MAX_TOTAL", 10)
    archive = zip_of(tmp_path, [(f"alice/{NB}", b"123456"), (f"bob/{NB}", b"123456"), (f"carol/{NB}", b"1234")])
    course = Course(tmp_path / "course")
    result = collect(course, archive)
    assert sorted(result.students) == ["alice", "carol"] and course.students() == ["alice", "carol"]
    assert "allowed in all: not taken" in dict(result.unmatched)[f"bob/{NB}"]


def test_too_many_zip_entries_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(collect_module, "MAX_ENTRIES", 3)
    archive = zip_of(tmp_path, [(f"s{i}/{NB}", b"x") for i in range(5)])
    with pytest.raises(CollectError, match="holds 5 entries; collect takes zips of at most 3"):
        collect(Course(tmp_path / "course"), archive)


def test_a_damaged_zip_is_one_line(tmp_path):
    archive = zip_of(tmp_path, [(f"alice/{NB}", b"alice")])
    data = archive.read_bytes()
    at = data.index(b"PK\x01\x02")
    archive.write_bytes(data[:at] + b"XX" + data[at + 2:])  # the central directory's signature
    fake_course(tmp_path)
    done = grader("collect", archive, "--course", tmp_path / "course")
    assert done.returncode != 0 and "cannot be read as a zip" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_shown_escapes_what_a_terminal_would_obey():
    assert shown("alice/hw14 (1).ipynb") == "alice/hw14 (1).ipynb"
    assert shown("\x1b]0;pwned\x07\u202etxt.ipynb\n\x00\u2028\U000e0041é") == \
        "\\x1b]0;pwned\\x07\\u202etxt.ipynb\\x0a\\x00\\u2028\\U000e0041é"


def test_printed_names_are_escaped(tmp_path):
    src = tmp_path / "downloads"
    write(src, f"alice/{NB}", b"alice")
    write(src, "alice/\x1b[2J\x1b]0;pwned\x07.ipynb")       # not taken: alice has hw14
    write(src, "zed/\u202egnp.ipynb", b"def fisher_diagonal(")  # zed's only notebook: a note
    write(src, "x_\ncollected 99 submissions into y.ipynb")  # a forged line
    write(src, f"eve\x1b[31m/{NB}")                          # an id that is no folder name
    fake_course(tmp_path)
    done = grader("collect", src, "--course", tmp_path / "course", "--student-pattern", r"^(?P<student>[^/]+)/")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(c.isprintable() for line in lines for c in line), done.stdout
    assert lines[0].startswith("collected 2 submissions") and len(lines) == 5, done.stdout
    assert "  not collected: alice/\\x1b[2J\\x1b]0;pwned\\x07.ipynb: alice submitted a newer" in done.stdout
    assert "  note: zed: took '\\u202egnp.ipynb' as" in done.stdout
    assert "  not collected: x_\\x0acollected 99 submissions into y.ipynb: no student id" in done.stdout
    assert f"  not collected: eve\\x1b[31m/{NB}: student id 'eve\\x1b[31m' is not" in done.stdout


def test_a_dot_is_no_student(tmp_path):
    archive = zip_of(tmp_path, [(f"./{NB}", b"dot"), (f"alice/{NB}", b"alice")])
    course = Course(tmp_path / "course")
    result = collect(course, archive)
    assert result.students == {"alice": f"alice/{NB}"}
    assert dict(result.unmatched)[f"./{NB}"] == "an absolute path or one through . or ..: not taken"
    assert [p.name for p in course.path("submitted").iterdir()] == ["alice"]


@pytest.mark.parametrize("folder", ["..", ".", "-rf", "_x", "a" * 65, "alice bob", "josé", "alice\n", "a\u2028b",
                                    "a\u202eb", "a:b", "a\\b"])
def test_student_ids_must_be_plain_folder_names(tmp_path, folder):
    archive = zip_of(tmp_path, [(f"[{folder}]/{NB}", b"x"), (f"[alice]/{NB}", b"alice")])
    course = Course(tmp_path / "course")
    result = collect(course, archive, r"^\[(?P<student>[^]]*)\]/")  # brackets keep . and .. out of the path check
    assert result.students == {"alice": f"[alice]/{NB}"}
    assert "is not 1 to 64 letters, digits and . _ @ -" in dict(result.unmatched)[f"[{folder}]/{NB}"]
    assert [p.name for p in course.path("submitted").iterdir()] == ["alice"]


def test_ids_with_nul_or_line_separators_are_never_ids():
    for student in ["a\x00b", "a\u2028b", "a\u2029b", "a\x85b", "alice\n", "a" * 64 + "\x00"]:
        assert not STUDENT_ID.fullmatch(student)
    assert STUDENT_ID.fullmatch("a" * 64) and STUDENT_ID.fullmatch("jo.smith-2@uni_x")


@pytest.mark.parametrize("name", [f"./{NB}", f"../{NB}", f"/abs/{NB}", f"a\x00b/{NB}", f"a\u2028b/{NB}",
                                  f"../../etc/x_{NB}"])
def test_ids_are_validated_and_nothing_lands_outside_submitted(tmp_path, name):
    archive = zip_of(tmp_path, [(name, b"x"), (f"ok/{NB}", b"ok")])
    course = Course(tmp_path / "course")
    result = collect(course, archive, r"^(?P<student>[^/]*)/")
    assert result.students == {"ok": f"ok/{NB}"}
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {archive, course.submitted("ok"), course.submitted("ok").with_name("timestamp.txt")}
    assert len(result.unmatched) == 1  # a NUL ends a zip name (zipfile): "a" is then no notebook


@pytest.mark.parametrize("pattern", [DEFAULT_PATTERN, r"^(?P<student>.*)/[^/]+$"])
def test_zip_slip_writes_nothing_outside_submitted(tmp_path, pattern):
    evil = [f"../../evil/{NB}", f"alice/../../../evil2/{NB}", f"{tmp_path}/abs/{NB}", f"/{NB}", f"../{NB}",
            f"..\\..\\evil3\\{NB}"]
    archive = zip_of(tmp_path, [*((name, b"evil") for name in evil), (f"bob/{NB}", b"bob")])
    course = Course(tmp_path / "course")
    result = collect(course, archive, pattern)
    assert result.students == {"bob": f"bob/{NB}"}
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {archive, course.submitted("bob"), course.submitted("bob").with_name("timestamp.txt")}
    why = dict(result.unmatched)
    assert all(why[name] == "an absolute path or one through . or ..: not taken" for name in evil)
