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


def test_links_are_never_followed(tmp_path):
    src, course = tmp_path / "downloads", Course(tmp_path / "course")
    write(src, "alice/hw14_lifelong_learning.ipynb", b"alice's work")
    secret = write(tmp_path, "root-only/token.ipynb", b"TA_API_TOKEN")
    (src / "mallory").mkdir()
    (src / "mallory" / "hw14_lifelong_learning.ipynb").symlink_to(src / "alice" / "hw14_lifelong_learning.ipynb")
    (src / "trudy_hw14_lifelong_learning.ipynb").symlink_to(secret)
    (src / "oscar").symlink_to(secret.parent, target_is_directory=True)
    result = collect(course, src)
    assert result.students == {"alice": "alice/hw14_lifelong_learning.ipynb"}
    why = dict(result.unmatched)
    assert all("symbolic link" in why[p] for p in ("mallory/hw14_lifelong_learning.ipynb",
                                                    "trudy_hw14_lifelong_learning.ipynb", "oscar"))
    assert not any("TA_API_TOKEN" in p.read_text() for p in course.root.rglob("*") if p.is_file())


def zip_of(tmp_path, members):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return archive


def test_bad_zip_metadata_costs_that_entry_its_date_only(tmp_path):
    bad_date = zipfile.ZipInfo("bob/hw14_lifelong_learning.ipynb", (2026, 11, 20, 9, 30, 0))
    archive = zip_of(tmp_path, [(bad_date, b"bob"), ("carol/hw14_lifelong_learning.ipynb", b"carol")])
    data = bytearray(archive.read_bytes())
    for at in (i for i in range(len(data)) if data.startswith(b"bob/hw14", i)):  # month 0 in both headers
        header = at - (30 if data[at - 30:at - 26] == b"PK\x03\x04" else 46)
        stamp = header + (10 if data[header:header + 4] == b"PK\x03\x04" else 12)
        day = int.from_bytes(data[stamp + 2:stamp + 4], "little")
        data[stamp + 2:stamp + 4] = (day & ~(0xF << 5)).to_bytes(2, "little")
    archive.write_bytes(bytes(data))
    course = Course(tmp_path / "course")
    result = collect(course, archive)
    assert sorted(result.students) == ["bob", "carol"] and course.submitted("bob").read_bytes() == b"bob"
    assert any("impossible date" in n for n in result.notes)


def test_a_zip_bomb_is_read_with_a_bound(tmp_path):
    from grader.collect import MAX_BYTES
    archive = zip_of(tmp_path, [("bob/hw14_lifelong_learning.ipynb", b"\0" * (MAX_BYTES + 10))])
    assert archive.stat().st_size < 1 << 20
    course = Course(tmp_path / "course")
    result = collect(course, archive)
    assert result.students == {} and "larger than 50 MB" in dict(result.unmatched)["bob/hw14_lifelong_learning.ipynb"]


def test_too_many_zip_entries_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("grader.collect.MAX_ENTRIES", 3)
    archive = zip_of(tmp_path, [(f"s{i}/hw14_lifelong_learning.ipynb", b"x") for i in range(5)])
    with pytest.raises(CollectError, match="holds 5 entries; collect takes zips of at most 3"):
        collect(Course(tmp_path / "course"), archive)


@pytest.mark.parametrize("name", ["./hw14_lifelong_learning.ipynb", "../hw14_lifelong_learning.ipynb",
                                  "/abs/hw14_lifelong_learning.ipynb", "a\x00b/hw14_lifelong_learning.ipynb",
                                  "a\u2028b/hw14_lifelong_learning.ipynb", "../../etc/x_hw14_lifelong_learning.ipynb"])
def test_ids_are_validated_and_nothing_lands_outside_submitted(tmp_path, name):
    archive = zip_of(tmp_path, [(name, b"x"), ("ok/hw14_lifelong_learning.ipynb", b"ok")])
    course = Course(tmp_path / "course")
    result = collect(course, archive, r"^(?P<student>[^/]*)/")
    assert result.students == {"ok": "ok/hw14_lifelong_learning.ipynb"}
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {archive, course.submitted("ok"), course.submitted("ok").with_name("timestamp.txt")}
    assert len(result.unmatched) == 1


def test_names_are_printed_escaped(tmp_path):
    from grader.collect import shown
    src = tmp_path / "downloads"
    write(src, "eve/\x1b]0;owned\x07\u202ereadme.txt", b"x")
    assert shown("a\x1b]0;x\x07\u202eb") == "a\\x1b]0;x\\x07\\u202eb"
    result = collect(Course(tmp_path / "course"), src)
    assert [shown(p) for p, _ in result.unmatched] == ["eve/\\x1b]0;owned\\x07\\u202ereadme.txt"]
