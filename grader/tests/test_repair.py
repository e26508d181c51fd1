import json
import time

import pytest

from grader.repair import RepairError, grade_id, repair, source_of


def encode(nb):
    return json.dumps(nb).encode()


def cell_of(nb, gid):
    return next(c for c in nb["cells"] if grade_id(c) == gid)


def test_an_untouched_submission_needs_no_repair(answered, released):
    out = repair(encode(answered), released)
    assert out.notes == [] and out.missing == {}
    assert [grade_id(c) for c in out.notebook["cells"]] == [grade_id(c) for c in released["cells"]]
    assert "def fisher_diagonal" in source_of(cell_of(out.notebook, "fisher_diagonal"))


def test_colab_metadata_loss_is_repaired_by_content(answered, released):
    for c in answered["cells"]:
        c["metadata"] = {"id": "x", "colab": {}}
    answered["metadata"] = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    out = repair(encode(answered), released)
    assert out.missing == {}
    assert cell_of(out.notebook, "check_fisher_diagonal")["metadata"]["nbgrader"]["points"] == 3
    assert "return {n: f / count" in source_of(cell_of(out.notebook, "fisher_diagonal"))
    assert "q01 = {'a', 'd'}" in source_of(cell_of(out.notebook, "quiz_1"))
    assert out.notebook["metadata"]["kernelspec"] == released["metadata"]["kernelspec"]
    assert any("restored the nbgrader metadata" in n for n in out.notes)
    assert "restored the kernelspec" in out.notes


def test_a_duplicated_answer_counts_as_the_last_copy_and_extra_cells_stay_in_place(answered, released):
    i = answered["cells"].index(cell_of(answered, "mas_importance"))
    older = dict(answered["cells"][i], source="def mas_importance(model, batches):\n    return {}\n")
    helper = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "def helper():\n    return 1\n"}
    answered["cells"][i:i] = [older, helper]
    out = repair(encode(answered), released)
    sources = [source_of(c) for c in out.notebook["cells"]]
    final = sources.index(source_of(cell_of(out.notebook, "mas_importance")))
    assert "omega" in sources[final]  # the last copy is the graded one
    assert sources.index(helper["source"]) < final
    assert "cell mas_importance appears 2 times; graded the last one" in out.notes


def test_a_notebook_from_before_the_package_moved_its_modules_imports_them_where_they_are(answered, released):
    """Downloaded before cl_course moved its teaching modules and the lessons' helpers into subpackages: its set-up
    cell's `from cl_course import selfcheck` would raise, leaving every name imported after it undefined."""
    setup = next(c for c in answered["cells"] if "COURSE_VERSION = " in source_of(c))
    new = "from cl_course import metrics, plots\nfrom cl_course.lessons import notebook as course\n" \
          "from cl_course.teaching import selfcheck\n"
    assert new in setup["source"]
    setup["source"] = setup["source"].replace(new, "from cl_course import metrics, plots, selfcheck  # the checks\n"
                                                   "from cl_course import notebook as course\n")
    answered["cells"].insert(answered["cells"].index(setup) + 1, {
        "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
        "source": "from cl_course.blanks import BLANKS\nfrom cl_course.strategies import EWC\nprint(BLANKS)\n"})
    out = repair(encode(answered), released)
    sources = [source_of(c) for c in out.notebook["cells"]]
    repaired = next(s for s in sources if "COURSE_VERSION = " in s)
    released_setup = next(source_of(c) for c in released["cells"] if "COURSE_VERSION = " in source_of(c))
    assert sorted(repaired.replace("  # the checks", "").splitlines()) == sorted(released_setup.splitlines())
    assert "from cl_course.teaching.blanks import BLANKS\nfrom cl_course.strategies import EWC\nprint(BLANKS)\n" \
        in sources
    assert ("imports of cl_course.blanks, cl_course.notebook, cl_course.selfcheck pointed at "
            "cl_course.teaching.blanks, cl_course.lessons.notebook, cl_course.teaching.selfcheck (the notebook was "
            "downloaded before the course package moved them)") in out.notes


def test_deleted_and_edited_test_cells_come_back_as_released(answered, released):
    answered["cells"].remove(cell_of(answered, "check_mas_importance"))
    cell_of(answered, "check_fisher_diagonal")["source"] = "pass"
    out = repair(encode(answered), released)
    check = "check_fisher_diagonal"
    assert source_of(cell_of(out.notebook, check)) == source_of(cell_of(released, check))
    assert grade_id(out.notebook["cells"][out.notebook["cells"].index(cell_of(out.notebook, "mas_importance")) + 1]) \
        == "check_mas_importance"
    assert "locked cells edited, the released version used: check_fisher_diagonal" in out.notes


def test_a_cell_found_only_by_position(answered, released):
    # metadata gone and the function renamed: neither its id nor its content identifies it
    c = cell_of(answered, "si_importance")
    c["metadata"], c["source"] = {}, c["source"].replace("def si_importance", "def si_importance_v2")
    out = repair(encode(answered), released)
    assert "si_importance_v2" in source_of(cell_of(out.notebook, "si_importance"))
    assert "found by position: si_importance" in out.notes


def test_a_missing_answer_cell_is_named_and_the_rest_kept(answered, released):
    answered["cells"].remove(cell_of(answered, "rwalk_score"))
    out = repair(encode(answered), released)
    assert out.missing == {"rwalk_score": "its cell (rwalk_score) was not found in the submission"}
    assert "graded 0: its cell (rwalk_score) was not found in the submission" in out.notes


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"   \n", "the file is empty"),
    (b"<html>not json</html>", "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "binary"),
    (b"[1, 2]", "JSON without a list of cells"),
    (b'{"cells": []}', "no cells"),
])
def test_files_that_are_not_notebooks_get_one_line(data, message, released):
    with pytest.raises(RepairError, match=message) as e:
        repair(data, released)
    assert "\n" not in str(e.value)


def solutions_found(out, answered):
    return all(source_of(cell_of(out.notebook, grade_id(c))) == source_of(c)
               for c in answered["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))


def nbformat3(nb):
    """The notebook as old Jupyter wrote it: worksheets, code in "input", sources as lists of lines."""
    import nbformat
    return json.loads(nbformat.writes(nbformat.convert(nbformat.from_dict(nb), 3)))


def test_an_nbformat_3_notebook_is_converted_cell_by_cell(answered, released):
    v3 = nbformat3(answered)
    cells = v3["worksheets"][0]["cells"]
    assert all("input" in c for c in cells if c["cell_type"] == "code")
    cells.insert(0, {"cell_type": "heading", "level": 2, "metadata": {}, "source": ["My notes"]})
    cells[1]["outputs"] = [{"text": "an output without output_type"}]  # its outputs are never read
    cells.append({"cell_type": "heading", "level": "two", "source": 7})
    out = repair(encode(v3), released)
    assert out.missing == {} and solutions_found(out, answered)
    assert source_of(out.notebook["cells"][0]) == "## My notes"
    assert out.notes[:2] == ["converted from nbformat 3",
                             "ignored 1 cells that are not notebook cells or whose source is not text"]


@pytest.mark.parametrize("data, message", [
    (b"[" * 5000 + b"]" * 5000, "nested thousands of levels deep"),
    (b'{"nbformat": 3, "worksheets": 7}', "an nbformat 3 notebook .* without worksheets of cells: open it in Jupyter"),
    (b'{"nbformat": 3, "worksheets": [{"cells": ["junk"]}]}', "has no cells"),
    (b'{"cells": [{"cell_type": 1}, {"source": "x"}, "junk", {"cell_type": "code", "source": 1}]}', "has no cells"),
])
def test_what_cannot_be_a_notebook_gets_one_line(data, message, released):
    with pytest.raises(RepairError, match=message) as e:
        repair(data, released)
    assert "\n" not in str(e.value)


def test_too_many_cells_or_bytes_are_refused_with_what_to_do(answered, released):
    extra = [{"cell_type": "markdown", "metadata": {}, "source": "x"}] * 2000
    too_many = "has 2,0.. cells; the grader takes at most 2,000: delete the extra cells"
    with pytest.raises(RepairError, match=too_many):
        repair(encode(dict(answered, cells=answered["cells"] + extra)), released)
    v3 = nbformat3(answered)  # counted over all worksheets, before any cell is converted
    v3["worksheets"].append({"cells": ["junk"] * 2000})
    with pytest.raises(RepairError, match=too_many):
        repair(encode(v3), released)
    big = {"cells": [{"cell_type": "code", "metadata": {}, "source": "", "outputs": [{"text": "x" * (51 << 20)}]}]}
    with pytest.raises(RepairError, match="51 MB; .* up to 50 MB: clear the outputs"):
        repair(encode(big), released)


def test_blank_lines_take_no_time(answered, released):
    # ^\s*def rescanned a run of blank lines from each of its lines: 100 s a cell of 200,000
    for c in answered["cells"]:
        c["metadata"] = {}  # so that every cell is matched by its content
    answered["cells"].insert(1, {"cell_type": "code", "metadata": {}, "source": "x = 1" + "\n" * 200_000})
    start = time.process_time()
    out = repair(encode(answered), released)
    assert time.process_time() - start < 5 and out.missing == {}


def test_junk_and_lone_surrogates_become_text(answered, released):
    fisher = cell_of(answered, "fisher_diagonal")
    fisher["source"] += "\n# \ud800 and a NUL \x00\n"
    cell_of(answered, "quiz_1")["metadata"]["nbgrader"]["grade_id"] = "quiz_1\udfff"
    answered["metadata"]["kernelspec"]["display_name"] = "\ud800"
    answered["cells"][0]["metadata"] = ["not", "a", "dict"]
    deep = []
    for _ in range(300):  # deep, yet not too deep for json
        deep = [deep]
    answered["cells"][1]["metadata"] = {"nbgrader": {"grade_id": deep}}
    answered["cells"][2:2] = [{"cell_type": "code", "metadata": {}, "source": 42}, "junk", {"source": "x"},
                              {"cell_type": "code", "metadata": {}, "source": ["a", None]}, {"cell_type": ["code"]}]
    out = repair(encode(answered), released)
    text = json.dumps(out.notebook, ensure_ascii=False).encode("utf-8")  # would raise on a lone surrogate
    assert b"# ? and a NUL \\u0000" in text and out.missing == {}
    assert "characters that are not text (lone surrogates) were replaced by '?'" in out.notes
    assert "ignored 5 cells that are not notebook cells or whose source is not text" in out.notes


def test_class_answers_are_found_by_their_class_names_not_their_methods(tmp_path):
    """Lesson 2's LwF, ExperienceReplay and AGEM define methods of the same names (replay, after_task): with the
    metadata lost, each is found by the class it defines, not by the last cell that defines a `replay`."""
    from grader.release import generate_notebooks

    from .make_corpus import solution_sources
    generate_notebooks(tmp_path / "course", tmp_path, names=["lesson2"])
    released = json.loads((tmp_path / "lesson2_scenarios_and_replay.ipynb").read_text())
    for c in released["cells"]:
        c["source"] = "".join(c["source"])
    answered = json.loads(json.dumps(released))
    for gid, source in solution_sources("lesson2").items():
        cell_of(answered, gid)["source"] = source
    for c in answered["cells"]:
        c["metadata"] = {"id": "x"}
    out = repair(encode(answered), released)
    assert out.missing == {}
    for gid in ("LwF", "ExperienceReplay", "AGEM"):
        assert source_of(cell_of(out.notebook, gid)).startswith(f"class {gid}(")
