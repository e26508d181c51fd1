"""Write the grader's test corpus: grader/tests/submissions/ (as an LMS download looks) and
grader/tests/expected.json (each student's expected score per part).

  python -m grader.tests.make_corpus

Run it again when the course notebook changes. Each case starts from the released notebook with
the reference answers filled in (what a student who got everything right submits) and changes
one thing: a typical wrong formula, Colab's mangling, a rename, or an attack on the grader.
"""
import json
import re
import shutil
import tempfile
from pathlib import Path

from grader.parts import parts_of
from grader.release import ROOT, STUDENT_NOTEBOOKS, generate_notebooks

HERE = Path(__file__).parent
SUBMISSIONS = HERE / "submissions"
NOTEBOOK = STUDENT_NOTEBOOKS[0]

FISHER_BATCH_MEAN = '''def fisher_diagonal(model, batches):
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            fisher[n] += g.pow(2)
    return {n: f / len(batches) for n, f in fisher.items()}
'''

TAMPERING = '''import builtins, json, torch
from cl_course import selfcheck
# make every check pass, whatever the answers
selfcheck.check = lambda *args, **kwargs: True
selfcheck.check_answer = lambda *args, **kwargs: True
torch.allclose = lambda *args, **kwargs: True
builtins.AssertionError = type("Never", (Exception,), {})
builtins.set = lambda *args: {"a", "d"}
# fake results: a correct-looking probe for every test cell, and files a grader might read
for name in ("results.jsonl", "grades.csv", "gradebook.db"):
    try:
        with open(name, "a") as f:
            f.write(json.dumps({"done": 11, "probe": {"results": []}}) + "\\n")
    except OSError:
        pass
def fisher_diagonal(model, batches):
    return {n: torch.zeros_like(p) for n, p in model.named_parameters()}
'''

ESCAPES = '''import os, socket, pathlib
def network():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        return True
    except OSError:
        return False
def finds(pattern, needle=None):
    for top in ("/", ):
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys", "dev", "usr"))]
            for f in files:
                if pathlib.PurePath(f).match(pattern):
                    try:
                        if needle is None or needle in pathlib.Path(root, f).read_text(errors="ignore"):
                            return True
                    except OSError:
                        pass
    return False
def writes_outside():
    for target in ("/job/owned.txt", "/student/owned.txt", "/data/owned.txt", os.path.expanduser("~/../owned.txt")):
        try:
            pathlib.Path(target).write_text("owned")
            if not target.startswith("/scratch"):
                return True
        except OSError:
            pass
    return False
# each escape that works turns a wrong answer into the right one
q01 = {"a", "d"} if network() else {"b"}
q02 = {"a", "b", "c"} if finds("gradebook.db", "check_fisher_diagonal") else {"d"}
q03 = {"a", "d"} if finds("importance.py", "BEGIN SOLUTION") else {"b"}
q04 = {"a", "b", "c"} if writes_outside() else {"d"}
q05 = {"a"} if finds("hw14_lifelong_learning.ipynb") else {"b"}
'''


def solution_sources():
    """{grade_id: the reference answer's source} from the source notebook, markers removed."""
    nb = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())
    out = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            text = "".join(cell["source"])
            out[meta["grade_id"]] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", "", text, flags=re.M)
    return out


def released():
    with tempfile.TemporaryDirectory() as tmp:
        generate_notebooks(Path(tmp) / "course", Path(tmp))
        nb = json.loads((Path(tmp) / NOTEBOOK).read_text())
    for c in nb["cells"]:
        c["source"] = "".join(c["source"])
    return nb


def cell(nb, gid):
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)


def set_source(nb, gid, source):
    cell(nb, gid)["source"] = source


def edit(nb, gid, old, new):
    c = cell(nb, gid)
    assert old in c["source"], (gid, old)
    c["source"] = c["source"].replace(old, new)


def before_def(nb, gid, code):
    """`code` runs first in the cell, so the function below it is never defined."""
    c = cell(nb, gid)
    c["source"] = code + "\n" + c["source"]


def colab_mangle(nb):
    """What a Colab round trip does: no nbgrader metadata, Colab's own ids, a kernelspec without
    language, a duplicated cell, a cell of the student's own, and a test cell deleted."""
    for i, c in enumerate(nb["cells"]):
        c["metadata"] = {"id": f"colab{i:03d}"} | ({"colab": {"base_uri": "https://localhost:8080/"},
                                                   "outputId": f"out{i}"} if c["cell_type"] == "code" else {})
        c.pop("id", None)
    nb["metadata"] = {"colab": {"provenance": []}, "kernelspec": {"name": "python3", "display_name": "Python 3"},
                      "accelerator": "GPU"}
    fisher = next(i for i, c in enumerate(nb["cells"]) if "def fisher_diagonal" in c["source"])
    early = dict(nb["cells"][fisher], source=FISHER_BATCH_MEAN, metadata={"id": "early"})
    nb["cells"].insert(fisher, early)  # an older wrong attempt above the final answer
    mas = next(i for i, c in enumerate(nb["cells"]) if "def mas_importance" in c["source"])
    nb["cells"].insert(mas, {"cell_type": "code", "metadata": {"id": "mine"}, "execution_count": None, "outputs": [],
                             "source": "def output_norm(model, x):\n    return model(x).pow(2).sum()\n"})
    edit_cell = nb["cells"][mas + 1]
    assert "model(x).pow(2).sum()" in edit_cell["source"]
    edit_cell["source"] = edit_cell["source"].replace("model(x).pow(2).sum()", "output_norm(model, x)")
    q03 = next(i for i, c in enumerate(nb["cells"]) if 'check_answer(globals(), "q03"' in c["source"])
    del nb["cells"][q03]


def cases(solutions):
    """(student, file name inside submissions/, change(nb) or raw bytes, {grade_id: expected score if not full})."""
    quiz = lambda qs: {q: 0.0 for q in qs}  # noqa: E731
    return [
        ("alice", "alice/hw14_lifelong_learning.ipynb", None, {}),
        ("bob", "bob_hw14_lifelong_learning.ipynb", "unfilled", None),
        ("carol", "carol/hw14_lifelong_learning.ipynb",
         lambda nb: set_source(nb, "fisher_diagonal", FISHER_BATCH_MEAN), {"check_fisher_diagonal": 0.0}),
        ("dave", "dave/hw14_lifelong_learning.ipynb",
         lambda nb: [edit(nb, "mas_importance", "g.abs().T @ a.detach().abs()", "g.pow(2).T @ a.detach().pow(2)"),
                     edit(nb, "mas_importance", "g.abs().sum(0)", "g.pow(2).sum(0)")], {"check_mas_importance": 0.0}),
        ("erin", "erin/hw14_lifelong_learning.ipynb",
         lambda nb: edit(nb, "si_path_step", "+= -gradients[n]", "+= gradients[n]"), {"check_si_path_step": 0.0}),
        ("frank", "frank/hw14_lifelong_learning.ipynb",
         lambda nb: edit(nb, "si_importance", "w / (delta[n].pow(2) + eps)", "w / delta[n].pow(2) + eps"),
         {"check_si_importance": 0.0}),
        ("grace", "grace/hw14_lifelong_learning.ipynb",
         lambda nb: edit(nb, "rwalk_score", "0.5 * fisher[n]", "fisher[n]"), {"check_rwalk_score": 0.0}),
        ("heidi", "heidi/hw14_lifelong_learning.ipynb",
         lambda nb: edit(nb, "scp_importance", ".pow(2).mean(0)", ".pow(2).sum(0)"), {"check_scp_importance": 0.0}),
        ("ivan", "ivan/hw14_lifelong_learning.ipynb",
         lambda nb: [edit(nb, "quiz_1", "q01 = {'a', 'd'}", "q01 = {'a'}"),
                     edit(nb, "quiz_2", "q07 = {'a', 'b', 'd'}", "q07 = 'c'"),
                     edit(nb, "quiz_5", "q22 = {'b'}", "q22 = 2")], quiz(["q01", "q07", "q22"])),
        ("judy", "judy/Copy of hw14_lifelong_learning.ipynb", colab_mangle, {}),
        ("ken", "ken_hw14_lifelong_learning (1).ipynb", None, {}),
        ("leo", "leo/my homework final.ipynb", None, {}),
        ("mallory", "mallory/hw14_lifelong_learning.ipynb", b"this is not a notebook\n", None),
        ("nina", "nina/hw14_lifelong_learning.ipynb", b"", None),
        ("oscar", "oscar/hw14_lifelong_learning.ipynb",
         lambda nb: [before_def(nb, gid, "import sys, warnings\nwarnings.warn('a deprecation warning')\n"
                                         "print('progress on stderr', file=sys.stderr)")
                     for gid in ("fisher_diagonal", "mas_importance", "scp_importance", "quiz_1")]
         + [edit(nb, "si_importance", "    return {", "    import warnings; warnings.warn('inside the function')\n"
                                                     "    return {")], {}),
        ("peggy", "peggy/hw14_lifelong_learning.ipynb",
         lambda nb: [set_source(nb, "fisher_diagonal", TAMPERING),
                     set_source(nb, "check_fisher_diagonal", "pass  # no test here"),
                     edit(nb, "quiz_1", "q01 = {'a', 'd'}", "q01 = {'b'}"),
                     nb["cells"].remove(cell(nb, "q01"))], {"check_fisher_diagonal": 0.0, "q01": 0.0}),
        ("quinn", "quinn/hw14_lifelong_learning.ipynb", lambda nb: set_source(nb, "quiz_1", ESCAPES),
         quiz(["q01", "q02", "q03", "q04", "q05"])),
        ("rupert", "rupert/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "fisher_diagonal", "while True:\n    pass"), {"check_fisher_diagonal": 0.0}),
        ("sybil", "sybil/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "mas_importance", "hog = []\nwhile True:\n    hog.append(bytearray(10**8))"),
         {"check_mas_importance": 0.0}),
        ("trent", "trent/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "si_path_step", "import os\nwhile True:\n    os.fork()"),
         {"check_si_path_step": 0.0}),
        ("ursula", "ursula/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "si_importance", "import sys\nsys.exit('bye')"), {"check_si_importance": 0.0}),
        ("victor", "victor/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "rwalk_score", "import os\nos._exit(0)"), {"check_rwalk_score": 0.0}),
        ("walter", "walter/hw14_lifelong_learning.ipynb",
         lambda nb: before_def(nb, "scp_importance", "import ctypes\nctypes.string_at(0)"),
         {"check_scp_importance": 0.0}),
        ("xena", "xena/hw14_lifelong_learning.ipynb",
         lambda nb: [before_def(nb, "quiz_2", "print('x' * 10**8)"),
                     before_def(nb, "quiz_3", "while True:\n    print('spam ' * 1000)")],
         quiz(["q11", "q12", "q13", "q14", "q15"])),
    ]


def main():
    release = released()
    solutions = solution_sources()
    parts = parts_of(json.loads((ROOT / "notebooks" / NOTEBOOK).read_text()))
    if SUBMISSIONS.exists():
        shutil.rmtree(SUBMISSIONS)
    expected = {}
    for student, rel, change, scores in cases(solutions):
        nb = json.loads(json.dumps(release))
        if change != "unfilled" and not isinstance(change, bytes):
            for gid, source in solutions.items():
                set_source(nb, gid, source)
            if change:
                change(nb)
        path = SUBMISSIONS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(change if isinstance(change, bytes) else json.dumps(nb, indent=1).encode())
        full = {p.grade_id: p.points for p in parts}
        by_part = {gid: 0.0 for gid in full} if scores is None else {gid: scores.get(gid, pts) for gid, pts in full.items()}
        expected[student] = {"file": rel, "total": sum(by_part.values()), "parts": by_part}
    (SUBMISSIONS / "README.txt").write_text("Not a submission: the LMS's own file, which collect must skip.\n")
    (SUBMISSIONS / "hw14_lifelong_learning.ipynb").write_text("{}")  # no student in its name
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(expected)} submissions to {SUBMISSIONS} and their expected scores to {HERE / 'expected.json'}")


if __name__ == "__main__":
    main()
