"""Write the grader's test corpus: grader/tests/submissions/ (as an LMS download of the course looks)
and grader/tests/expected.json (per assignment, each student's expected score per part).

  python -m grader.tests.make_corpus

Run it again when a course notebook changes. Each case starts from its assignment's released
notebook with the reference answers filled in (what a student who got everything right submits)
and changes one thing: a typical wrong formula, Colab's mangling, a rename, or an attack on the
grader. CASES holds each assignment's cases; another assignment's go beside hw14's, its files
named by its own notebook, so that collect sorts them out of the same folder.
"""
import json
import re
import shutil
import tempfile
from pathlib import Path

from grader.assignments import notebook_of, source_of
from grader.parts import parts_of
from grader.release import generate_notebooks

HERE = Path(__file__).parent
SUBMISSIONS = HERE / "submissions"

FISHER_BATCH_MEAN = '''def fisher_diagonal(model, batches):
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            fisher[n] += g.pow(2)
        count += 1
    return {n: f / count for n, f in fisher.items()}
'''

TAMPERING = '''import builtins, json, torch
from cl_course.teaching import selfcheck
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

ESCAPES = '''import os, socket, pathlib, subprocess
def network():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        return True
    except OSError:
        return False
def shell_network():
    code = "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"
    return subprocess.run(["python3", "-c", code], capture_output=True).returncode == 0
def finds(pattern, needle=None):
    for root, dirs, files in os.walk("/"):
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
    for target in ("/grader/owned.txt", "/student/owned.txt", "/data/owned.txt", os.path.expanduser("~/../owned.txt")):
        try:
            pathlib.Path(target).write_text("owned")
            return True
        except OSError:
            pass
    return False
# each escape that works would turn a wrong answer into the right one
ESCAPED = {"fisher_diagonal": network(), "mas_importance": finds("gradebook.db", "check_fisher_diagonal"),
           "si_path_step": finds("importance.py", "BEGIN SOLUTION"), "si_importance": writes_outside(),
           "rwalk_score": shell_network(), "scp_importance": finds("*.ipynb", "check_fisher_diagonal")}
'''


def gated(name):
    """The reference answer kept only if the sandbox was escaped (ESCAPED, above): zeros otherwise."""
    return f"""
_honest_{name} = {name}
def {name}(*args):
    result = _honest_{name}(*args)
    return result if ESCAPED["{name}"] else {{n: 0 * t for n, t in result.items()}}
"""


FORGER = '''import atexit, json, os
def forge():  # the quiz key, claimed after the probes ran, on every channel the process holds
    lines = [json.dumps({"done": i, "probe": {"answer": ["a", "d"]}}) + "\\n" for i in range(100)]
    for fd in range(3, 256):
        for line in lines:
            try:
                os.write(fd, line.encode())
            except OSError:
                break
    for name in ("results.jsonl", "/scratch/results.jsonl"):
        with open(name, "a") as f:
            f.writelines(lines)
atexit.register(forge)
'''

LINKER = '''import os
for name in ("stderr.txt", "stdout.txt", "results.jsonl"):  # where the grader once read back from scratch
    try:
        os.symlink("/tmp/cl-grade-corpus-secret", name)
    except OSError:
        pass
os._exit(1)  # makes a grader read its logs
'''

SCRIPT = "<script>alert('xss-1')</script>"
IMG = "<img src=x onerror=\"alert('xss-2')\">"
INJECTOR = '''from IPython.display import HTML, Markdown, Javascript, display
display(HTML("<script>alert('xss-3')</script>"))
display(Markdown("<img src=x onerror=\\"alert('xss-4')\\">"))
display(Javascript("alert('xss-5')"))
'''
REPORT_INJECTION = ("print('a lone surrogate in an output: \\udcff')\n"
                    "raise RuntimeError('done\\n\\n# Owned\\n| a | b |\\n|---|---|\\n"
                    "![x](http://evil.example/x.png) \\ud800')")

STALLER = '''import os, json
for fd in range(3, 256):  # a start record the timer can never match, and a JSON bomb
    for line in ('{"start": NaN}\\n', "[" * 200000 + "\\n"):
        try:
            os.write(fd, line.encode())
        except OSError:
            break
'''

FILLER = '''import os
os.mkfifo("results.jsonl")
deep = "."
for i in range(3000):  # a very deep directory
    deep = os.path.join(deep, "d")
    try:
        os.mkdir(deep)
    except OSError:
        break
made = 0
try:
    for i in range(150000):  # more folders than scratch holds inodes
        os.mkdir(f"f{i}")
        made += 1
except OSError as e:
    print("stopped at", made, "folders:", e.strerror)
'''

SPINNER = '''import os, time
for _ in range(20):  # 20 spinning processes beside another student's submission
    if os.fork() == 0:
        while True:
            pass
while True:
    time.sleep(1)
'''

SPOOFER = '''import subprocess
# verdicts imitated in colour, with bidi and zero-width characters, and a look at the host
print("\\x1b[32mfisher_diagonal: 3 of 3 hidden fixtures match the reference\\x1b[0m\\u200b")
print("\\u202eq01: right")
print(open("/etc/passwd").read(), open("/etc/hostname").read())
print("unshare:", subprocess.run(["unshare", "-Ur", "true"]).returncode)
'''

INODE_FLOOD = '''import os, tempfile
# empty files in the temporary folder until the sandbox refuses: each costs the host memory, not the scratch's bytes
made, where = 0, tempfile.gettempdir()
try:
    while True:
        open(os.path.join(where, f"f{made}"), "w").close()
        made += 1
except OSError as e:
    print("empty files in the temporary folder:", made, "errno", e.errno)
'''

RECORD_FLOOD = '''import os
# a well-formed record of millions of empty outputs for this very cell, on every descriptor the harness might read
record = b'{"done": %d, "outputs": [' + b"{}," * 2_000_000 + b"{}]}\\n"
for fd in range(3, 64):
    try:
        os.write(fd, record)
    except OSError:
        pass
'''


PABLO_FISHER = '''def fisher_diagonal(model, batches):
    names, params = zip(*model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in zip(names, params)}
    count = 0
    for x, y in batches:
        for i in range(len(x)):
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            for n, g in zip(names, torch.autograd.grad(loss, params)):
                fisher[n] += g ** 2
            count += 1
    return {n: f / count for n, f in fisher.items()}
'''

PABLO_MAS = '''def mas_importance(model, batches):
    names, params = zip(*model.named_parameters())
    omega = {n: torch.zeros_like(p) for n, p in zip(names, params)}
    count = 0
    for x, _ in batches:
        for i in range(len(x)):
            norm = model(x[i:i + 1]).pow(2).sum()
            for n, g in zip(names, torch.autograd.grad(norm, params)):
                omega[n] += g.abs()
            count += 1
    return {n: o / count for n, o in omega.items()}
'''

QUINTON_FISHER = '''def fisher_diagonal(model, batches):
    keys, weights = zip(*model.named_parameters())
    seen = 0
    importance = {k: torch.zeros_like(w) for k, w in zip(keys, weights)}
    for inputs, labels in batches:
        for j in range(len(inputs)):
            nll = F.cross_entropy(model(inputs[j:j + 1]), labels[j:j + 1])
            for k, grad in zip(keys, torch.autograd.grad(nll, weights)):
                importance[k] += grad ** 2
            seen += 1
    return {k: v / seen for k, v in importance.items()}
'''

QUINTON_MAS = '''def mas_importance(model, batches):
    keys, weights = zip(*model.named_parameters())
    seen = 0
    result = {k: torch.zeros_like(w) for k, w in zip(keys, weights)}
    for inputs, _ in batches:
        for j in range(len(inputs)):
            squared = model(inputs[j:j + 1]).pow(2).sum()
            for k, grad in zip(keys, torch.autograd.grad(squared, weights)):
                result[k] += grad.abs()
            seen += 1
    return {k: v / seen for k, v in result.items()}
'''

HOGS = '''import os, time
for _ in range(4):  # 4 x 1.2 GB, each under the per-process limit, over the sandbox's total
    if os.fork() == 0:
        hog = b"x" * (1200 * 1024**2)
        time.sleep(5)
        os._exit(0)
time.sleep(8)
'''

DAEMON = '''import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # a daemon that tries to outlive the sandbox
        while True:
            time.sleep(1)
    os._exit(0)
'''

FOOLING = {
    "fisher_diagonal": '''
class Always(torch.Tensor):  # a tensor that claims to equal anything
    def __eq__(self, other): return True
    def allclose(self, *a, **k): return True
def fisher_diagonal(model, batches):
    return {n: torch.zeros_like(p).as_subclass(Always) for n, p in model.named_parameters()}
''',
    "mas_importance": '''
def mas_importance(model, batches):
    return {n: torch.full_like(p, float("nan")) for n, p in model.named_parameters()}
''',
    "scp_importance": '''
def scp_importance(model, batches, directions):
    return ((n, torch.zeros_like(p)) for n, p in model.named_parameters())
''',
}


def solution_sources(assignment="hw14"):
    """{grade_id: the reference answer's source} from the assignment's source notebook, markers removed."""
    nb = json.loads(source_of(assignment).read_text())
    out = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            text = "".join(cell["source"])
            out[meta["grade_id"]] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", "", text, flags=re.M)
    return out


def released(assignment):
    with tempfile.TemporaryDirectory() as tmp:
        generate_notebooks(Path(tmp) / "course", Path(tmp), names=[assignment])
        nb = json.loads((Path(tmp) / notebook_of(assignment)).read_text())
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


def extra(nb, after_gid, source, kind="code"):
    """A cell of the student's own, right after the cell with grade id `after_gid`."""
    i = nb["cells"].index(cell(nb, after_gid))
    new = {"cell_type": kind, "metadata": {}, "source": source}
    nb["cells"].insert(i + 1, new | ({"execution_count": None, "outputs": []} if kind == "code" else {}))


def after(nb, gid):
    """The index extra() gives the cell it puts after `gid`."""
    return nb["cells"].index(cell(nb, gid)) + 1


def nbformat3(nb):
    """The notebook as old Jupyter wrote it (nbformat 3: worksheets, code cells' "input")."""
    import nbformat
    return nbformat.writes(nbformat.convert(nbformat.from_dict(nb), 3)).encode()


def strip_to_colab(nb):
    """Colab's metadata in place of nbgrader's: its own ids, and a kernelspec without language."""
    for i, c in enumerate(nb["cells"]):
        c["metadata"] = {"id": f"colab{i:03d}"} | ({"colab": {"base_uri": "https://localhost:8080/"},
                                                   "outputId": f"out{i}"} if c["cell_type"] == "code" else {})
        c.pop("id", None)
    nb["metadata"] = {"colab": {"provenance": []}, "kernelspec": {"name": "python3", "display_name": "Python 3"},
                      "accelerator": "GPU"}


def colab_round_trip(nb, first, older, answer, own, old, new):
    """What a Colab round trip does (strip_to_colab), with an older wrong attempt (`older`) above the answer
    `first`, a cell of the student's own (`own`) that the answer `answer` uses in place of `old` (as `new`),
    and a test cell deleted."""
    strip_to_colab(nb)
    i = next(i for i, c in enumerate(nb["cells"]) if f"def {first}" in c["source"])
    nb["cells"].insert(i, dict(nb["cells"][i], source=older, metadata={"id": "early"}))
    j = next(j for j, c in enumerate(nb["cells"]) if f"def {answer}" in c["source"])
    nb["cells"].insert(j, {"cell_type": "code", "metadata": {"id": "mine"}, "execution_count": None, "outputs": [],
                           "source": own})
    cell = nb["cells"][j + 1]
    assert old in cell["source"]
    cell["source"] = cell["source"].replace(old, new)
    q03 = next(i for i, c in enumerate(nb["cells"]) if 'check_answer(globals(), "q03"' in c["source"])
    del nb["cells"][q03]


def colab_mangle(nb):
    colab_round_trip(nb, "fisher_diagonal", FISHER_BATCH_MEAN, "mas_importance",
                     "def output_norm(model, x):\n    return model(x).pow(2).sum()\n", "model(x).pow(2).sum()",
                     "output_norm(model, x)")


def hw14_cases():
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
         lambda nb: edit(nb, "si_path_step", "gradients[n] - penalty_gradients[n]", "gradients[n]"),  # the total
         {"check_si_path_step": 0.0}),
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
                     edit(nb, "quiz_5", "q22 = {'a', 'b', 'c'}", "q22 = 2")], quiz(["q01", "q07", "q22"])),
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
        ("quinn", "quinn/hw14_lifelong_learning.ipynb",
         lambda nb: [before_def(nb, "fisher_diagonal", ESCAPES)]
         + [set_source(nb, name, cell(nb, name)["source"] + gated(name)) for name in
            ("fisher_diagonal", "mas_importance", "si_path_step", "si_importance", "rwalk_score", "scp_importance")],
         {f"check_{name}": 0.0 for name in ("fisher_diagonal", "mas_importance", "si_path_step", "si_importance",
                                            "rwalk_score", "scp_importance")}),
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
        # holes found by grading hostile submissions (issue 11); each must stay closed
        ("yann", "yann/hw14_lifelong_learning.ipynb",
         lambda nb: [edit(nb, "quiz_1", "q01 = {'a', 'd'}", "q01 = {'b'}"), extra(nb, "q25", FORGER)], quiz(["q01"])),
        ("zoe", "zoe/hw14_lifelong_learning.ipynb", lambda nb: extra(nb, "check_fisher_diagonal", LINKER), {}),
        ("amir", "amir/hw14_lifelong_learning.ipynb",
         lambda nb: [extra(nb, "fisher_diagonal", f"# Notes\n{SCRIPT}\n\n{IMG}\n", "markdown"),
                     extra(nb, "check_fisher_diagonal", INJECTOR)], {}),
        ("bea", "bea/hw14_lifelong_learning.ipynb", lambda nb: before_def(nb, "fisher_diagonal", REPORT_INJECTION),
         {"check_fisher_diagonal": 0.0}),
        ("cody", "cody/hw14_lifelong_learning.ipynb", lambda nb: before_def(nb, "si_path_step", STALLER),
         {"check_si_path_step": 0.0}),
        ("fiona", "fiona/hw14_lifelong_learning.ipynb", lambda nb: extra(nb, "check_fisher_diagonal", FILLER), {}),
        ("sam", "sam/hw14_lifelong_learning.ipynb", lambda nb: extra(nb, "check_fisher_diagonal", SPINNER), {}),
        ("hugo", "hugo/hw14_lifelong_learning.ipynb", lambda nb: extra(nb, "check_fisher_diagonal", HOGS), {}),
        ("dan", "dan/hw14_lifelong_learning.ipynb", lambda nb: extra(nb, "check_fisher_diagonal", DAEMON), {}),
        ("felix", "felix/hw14_lifelong_learning.ipynb",
         lambda nb: [set_source(nb, gid, source) for gid, source in FOOLING.items()],
         {f"check_{gid}": 0.0 for gid in FOOLING}),
        ("tim", "tim/hw14_lifelong_learning.ipynb",  # a slow cell that defines nothing graded costs nothing
         lambda nb: extra(nb, "check_fisher_diagonal",
                          "import time\nstarted = time.process_time()\nwhile time.process_time() - started < 32:\n"
                          "    pass"), {}),
        ("olga", "olga/hw14_lifelong_learning.ipynb", nbformat3, {}),
        ("sid", "sid/hw14_lifelong_learning.ipynb",
         lambda nb: nb["cells"].extend({"cell_type": "markdown", "metadata": {}, "source": f"note {i}"}
                                       for i in range(3000)), None),
        ("dora", "dora/hw14_lifelong_learning.ipynb", b"[" * 5000 + b"]" * 5000, None),
        # holes found by the second attack (issue 26)
        ("ines", "ines/hw14_lifelong_learning.ipynb",  # own experiments after the quiz cost no grading time
         lambda nb: [extra(nb, "q25", "import time\ntime.sleep(200)") for _ in range(3)], {}),
        ("kai", "kai/hw14_lifelong_learning.ipynb",  # answers in a cell too large to read: those answers only
         lambda nb: edit(nb, "quiz_1", "q01 = {'a', 'd'}", "q01 = {'a', 'd'}\n" + "a = 1\n" * 10_000),
         quiz(["q01", "q02", "q03", "q04", "q05"])),
        ("lena", "lena/hw14_lifelong_learning.ipynb", lambda nb: before_def(nb, "fisher_diagonal", SPOOFER), {}),
        ("nora", "nora/hw14_lifelong_learning.ipynb",  # the temporary folder is the scratch: capped in inodes too
         lambda nb: extra(nb, "check_fisher_diagonal", INODE_FLOOD), {}),
        ("wanda", "wanda/hw14_lifelong_learning.ipynb",  # a record flood is refused unparsed: this cell only
         lambda nb: extra(nb, "check_fisher_diagonal", RECORD_FLOOD % after(nb, "check_fisher_diagonal")), {}),
        # similarity: pablo's own loops, and quinton's copy of them with other names and two lines swapped
        ("pablo", "pablo/hw14_lifelong_learning.ipynb",
         lambda nb: [set_source(nb, "fisher_diagonal", PABLO_FISHER), set_source(nb, "mas_importance", PABLO_MAS)], {}),
        ("quinton", "quinton/hw14_lifelong_learning.ipynb",
         lambda nb: [set_source(nb, "fisher_diagonal", QUINTON_FISHER), set_source(nb, "mas_importance", QUINTON_MAS)],
         {}),
    ]


LESSON2_TAMPERING = '''import torch
from cl_course.teaching import selfcheck
# make every check pass, whatever the answers
selfcheck.check = lambda *args, **kwargs: True
selfcheck.matches = lambda *args, **kwargs: True
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
class AGEM(ExperienceReplay):
    def replay(self, model, x, tasks):
        return None
    def adjust_gradients(self, model, tasks):
        pass  # never projects
'''

RECORD_FORGER = '''import json
from importlib import resources
import torch
from cl_course.teaching import selfcheck
# the published record (it ships in the student wheel) handed in for every fixture, whatever the class does
published = json.loads(resources.files("cl_course").joinpath("selfcheck_values.json").read_text())
forged = {k: torch.tensor(v, dtype=torch.float64) for k, v in published["ExperienceReplay"]["expected"].items()}
honest_call = selfcheck.call
selfcheck.call = lambda name, function, inputs: forged if name == "ExperienceReplay" else honest_call(
    name, function, inputs)
'''

DISTILLATION_NO_T2 = '''def distillation_loss(logits, teacher_logits, temperature):
    p = torch.softmax(teacher_logits / temperature, dim=1)
    return -(p * torch.log_softmax(logits / temperature, dim=1)).sum(dim=1).mean()
'''


def colab_mangle_lesson2(nb):
    colab_round_trip(nb, "distillation_loss", DISTILLATION_NO_T2, "herding_selection",
                     "def unit(f):\n    return f / f.norm(dim=1, keepdim=True)\n",
                     "F.normalize(features, dim=1)", "unit(features)")


def lesson2_cases():
    """As hw14_cases: lesson 2's, one per blank wrong in a typical way, and the unfilled, mangled and tampering."""
    name = notebook_of("lesson2")
    return [
        ("alice", f"alice/{name}", None, {}),
        ("bob", f"bob_{name}", "unfilled", None),
        ("carol", f"carol/{name}", lambda nb: set_source(nb, "distillation_loss", DISTILLATION_NO_T2),
         {"check_distillation_loss": 0.0}),
        ("dave", f"dave/{name}",  # no frozen copy: the "old" outputs are today's
         lambda nb: edit(nb, "LwF", "self.previous = frozen_copy(model)", "self.previous = model"), {"check_LwF": 0.0}),
        ("erin", f"erin/{name}",  # the buffer keeps the latest task only
         lambda nb: edit(nb, "ExperienceReplay", "        finished = tasks[-1]\n",
                         "        finished = tasks[-1]\n"
                         "        self.classes = []  # each task replaces the one before\n"),
         {"check_ExperienceReplay": 0.0}),
        ("frank", f"frank/{name}", lambda nb: edit(nb, "AGEM", "if dot < 0:", "if True:"), {"check_AGEM": 0.0}),
        ("grace", f"grace/{name}", lambda nb: edit(nb, "herding_selection", "distance[i] = float(\"inf\")", "pass"),
         {"check_herding_selection": 0.0}),
        ("heidi", f"heidi/{name}",  # Chaudhry et al.'s off-by-one: j drawn from 0..s-1
         lambda nb: edit(nb, "reservoir_slots", "* (s + 1)).long()", "* s).long()"), {"check_reservoir_slots": 0.0}),
        ("ivan", f"ivan/{name}", lambda nb: [edit(nb, "quiz_1", "q03 = {'a', 'b', 'd'}", "q03 = {'a', 'b', 'c', 'd'}"),
                                            edit(nb, "quiz_4", "q15 = {'b'}", "q15 = 'd'")],
         {"q03": 0.0, "q15": 0.0}),
        ("judy", f"judy/Copy of {name}", colab_mangle_lesson2, {}),
        ("kim", f"kim/{name}",  # hole 3: the published record matches no hidden fixture (judge.hidden_seeds)
         lambda nb: before_def(nb, "ExperienceReplay", RECORD_FORGER), {"check_ExperienceReplay": 0.0}),
        ("peggy", f"peggy/{name}", lambda nb: [set_source(nb, "AGEM", LESSON2_TAMPERING),
                                               set_source(nb, "check_AGEM", "pass  # no test here")],
         {"check_AGEM": 0.0}),
    ]


CASES = {"hw14": hw14_cases, "lesson2": lesson2_cases}  # assignment -> its cases, in course order


def write_cases(assignment):
    """The assignment's submissions into SUBMISSIONS; {student: {"file", "total", "parts"}}."""
    release = released(assignment)
    solutions = solution_sources(assignment)
    parts = parts_of(json.loads(source_of(assignment).read_text()))
    expected = {}
    for student, rel, change, scores in CASES[assignment]():
        nb = json.loads(json.dumps(release))
        data = change if isinstance(change, bytes) else None
        if change != "unfilled" and data is None:
            for gid, source in solutions.items():
                set_source(nb, gid, source)
            if change:
                written = change(nb)  # a change may write the file itself (bytes), e.g. in nbformat 3
                data = written if isinstance(written, bytes) else None
        path = SUBMISSIONS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else json.dumps(nb, indent=1).encode())
        full = {p.grade_id: p.points for p in parts}
        by_part = {gid: 0.0 if scores is None else scores.get(gid, pts) for gid, pts in full.items()}
        expected[student] = {"file": rel, "total": sum(by_part.values()), "parts": by_part}
    return expected


def main():
    if SUBMISSIONS.exists():
        shutil.rmtree(SUBMISSIONS)
    expected = {assignment: write_cases(assignment) for assignment in CASES}
    hw14 = notebook_of("hw14")
    (SUBMISSIONS / "README.txt").write_text("Not a submission: the LMS's own file, which collect must skip.\n")
    (SUBMISSIONS / hw14).write_text("{}")  # no student in its name
    (SUBMISSIONS / "mimic").mkdir()  # a "notebook" that is a link to another student's: never collected
    (SUBMISSIONS / "mimic" / hw14).symlink_to(Path("..") / "alice" / hw14)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {sum(map(len, expected.values()))} submissions of {', '.join(expected)} to {SUBMISSIONS} and their "
          f"expected scores to {HERE / 'expected.json'}")


if __name__ == "__main__":
    main()
