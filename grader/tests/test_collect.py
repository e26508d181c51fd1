import os
import zipfile

import pytest

from grader.collect import CollectError, collect, notebook_name
from grader.course import Course


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
    write(src, "carol/whatever I called it.ipynb", b"carol")
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
    assert course.submitted("carol").read_bytes() == b"carol"
    why = dict(result.unmatched)
    assert "newer or better-named" in why["bob_hw14_lifelong_learning.ipynb"]
    assert "none is hw14_lifelong_learning.ipynb" in why["dave/notes.ipynb"]
    assert "no student id" in why["hw14_lifelong_learning.ipynb"]
    assert "no student id" in why["Copy of hw14_lifelong_learning.ipynb"]
    assert "not a notebook" in why["erin/hw14_lifelong_learning.pdf"]
    assert result.notes == ["carol: took 'whatever I called it.ipynb' as hw14_lifelong_learning.ipynb (their only notebook)"]


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
