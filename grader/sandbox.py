"""Run a submission's harness in a bubblewrap sandbox, watched from outside.

Inside: no network; read-only system, Python and student-edition package; the job folder read-only;
one writable scratch folder; nothing of the course folder, other submissions, the gradebook or the
instructor's sources. Limits: memory, CPU time, file size and processes (rlimits, under a uid of
its own when the grader is root), a wall-clock limit per cell and per run (enforced from outside,
so the student's code cannot catch it), and scratch disk use.
"""
import json
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

HARNESS = Path(__file__).with_name("harness.py")


@dataclass
class Limits:
    cell_seconds: float = 30.0  # wall clock per cell, nbgrader's default; the grading profile needs ~5 s
    run_seconds: float = 300.0  # wall clock for a whole run of a submission
    cpu_seconds: int = 300      # CPU time of the run's processes
    memory_mb: int = 3072       # data segment per process (torch alone needs ~0.8 GB)
    processes: int = 64         # processes and threads of the sandbox's uid
    file_mb: int = 64           # largest file the student's code may write
    scratch_mb: int = 256       # all files in scratch together
    output_chars: int = 20000   # kept per cell and stream in the graded notebook


class SandboxError(Exception):
    """The sandbox cannot run here; the message says why and what to do."""


@dataclass
class Outcome:
    """How a run ended: `reason` says why it stopped early (None when the harness finished)."""
    entries: list
    reason: str | None
    stopped_in: int | None  # the cell that was running when the run was stopped


def python_roots():
    """The folders the sandbox needs to run this Python and its packages."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    user_site = Path(site.getusersitepackages())
    if user_site.is_dir():
        roots.add(user_site)
    return sorted(r for r in roots if not str(r).startswith("/usr/"))


def instructor_paths():
    """Where the instructor's cl_course and grader live: hidden even if inside a bound folder."""
    paths = []
    for name in ("cl_course", "grader"):
        spec = find_spec(name)
        paths += [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    return paths


def bind_with_parents(args, source, target, mode="--ro-bind"):
    # bwrap creates missing parents 0700, which a sandbox uid could not traverse
    for parent in reversed(Path(target).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    args += [mode, str(source), str(target)]


def bwrap_args(job_dir, scratch, student_site, data_root, uid, limits):
    args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    bound = python_roots()
    for root in bound:
        bind_with_parents(args, root, root)
    for hidden in instructor_paths():
        if any(hidden.is_relative_to(r) for r in bound + [Path("/usr")]):
            args += ["--tmpfs", str(hidden)]
    bind_with_parents(args, job_dir, "/job")
    bind_with_parents(args, student_site, "/student")
    if data_root and Path(data_root).is_dir():
        bind_with_parents(args, data_root, "/data")
    bind_with_parents(args, scratch, "/scratch", "--bind")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/scratch", "PYTHONPATH": "/student",
           "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/scratch/.matplotlib",
           "IPYTHONDIR": "/scratch/.ipython", "CL_COURSE_PROFILE": "grading", "CL_COURSE_DATA": "/data",
           "NBGRADER_EXECUTION": "autograde", "CUDA_VISIBLE_DEVICES": "", "TQDM_DISABLE": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    args += ["--clearenv", "--chdir", "/scratch"]
    for k, v in env.items():
        args += ["--setenv", k, v]
    if uid is not None:  # root: drop to a uid of our own so that rlimits on processes apply
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "setpriv", f"--reuid={uid}",
                 f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    return args + [sys.executable, "-B", "/job/harness.py", "/job/job.json", "/scratch/results.jsonl"]


def user_processes():
    """Processes and threads of this uid now (rlimits on processes count all of them)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return count


def limiter(limits, processes):
    def apply():
        os.setsid()  # one process group to kill
        for kind, value in ((resource.RLIMIT_DATA, limits.memory_mb << 20), (resource.RLIMIT_CPU, limits.cpu_seconds),
                            (resource.RLIMIT_FSIZE, limits.file_mb << 20), (resource.RLIMIT_NPROC, processes),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(kind, (value, value))
    return apply


def folder_size(path):
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return total


class Results:
    """The harness's JSON lines, read as they grow (the run is watched ten times a second); lines
    that do not parse (a student may write anything) are skipped."""

    def __init__(self, path):
        self.path, self.offset, self.entries = Path(path), 0, []

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.entries
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                self.entries.append(entry)
        return self.entries


def running_cell(entries):
    """The cell started last, unless a "done" for it followed (a student may write fake lines)."""
    for i in range(len(entries) - 1, -1, -1):
        if "start" in entries[i]:
            cell = entries[i]["start"]
            return None if any(e.get("done") == cell for e in entries[i + 1:]) else cell
    return None


def describe_exit(code):
    if code < 0 or code > 128:  # bwrap reports a signal as 128 + its number
        name = signal.Signals(-code if code < 0 else code - 128).name
        hint = {"SIGKILL": "killed (out of memory?)", "SIGSEGV": "crashed (segmentation fault)",
                "SIGXCPU": "used up its CPU time", "SIGABRT": "aborted"}.get(name, f"died of {name}")
        return f"the notebook's process {hint}"
    return f"the notebook's process exited with status {code} (sys.exit or os._exit in a cell?)"


class Sandbox:
    """Runs harness jobs; `slot` picks a uid of its own per parallel worker when the grader is root."""

    def __init__(self, student_site, data_root=None, limits=None, enabled=True):
        self.student_site, self.data_root = Path(student_site), data_root
        self.limits, self.enabled = limits or Limits(), enabled
        self.font_cache = None

    def check(self):
        """Raise SandboxError unless a trivial job runs in the sandbox."""
        if not self.enabled:
            return
        if shutil.which("bwrap") is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install "
                               "bubblewrap) or grade without a sandbox with --no-sandbox")
        with tempfile.TemporaryDirectory() as tmp:
            job, scratch = Path(tmp, "job"), Path(tmp, "scratch")
            job.mkdir(), scratch.mkdir()
            (job / "job.json").write_text(json.dumps({"cells": [], "seeds": [], "skip": {}, "max_output": 100}))
            shutil.copy(HARNESS, job / "harness.py")
            outcome = self.run(job, scratch, slot=0)
            if outcome.reason:
                log = (scratch / "stderr.txt").read_text(errors="replace").strip().splitlines()
                raise SandboxError(f"the sandbox does not start here ({log[-1] if log else outcome.reason}); "
                                   "fix bubblewrap or grade without a sandbox with --no-sandbox")

    def fonts(self):
        """matplotlib's font list, built once here rather than in every run (0.7 s each)."""
        if self.font_cache is None:
            self.font_cache = tempfile.mkdtemp(prefix="cl-grade-fonts-")
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True,
                           env=dict(os.environ, MPLCONFIGDIR=self.font_cache))
        return self.font_cache

    def command(self, job_dir, scratch, slot):
        uid = 61000 + slot if os.getuid() == 0 else None
        if not self.enabled:
            env = dict(os.environ, PYTHONPATH=str(self.student_site), CL_COURSE_PROFILE="grading",
                       NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg", TQDM_DISABLE="1", OMP_NUM_THREADS="1",
                       MPLCONFIGDIR=str(scratch / ".matplotlib"))
            if self.data_root:
                env["CL_COURSE_DATA"] = str(self.data_root)
            return [sys.executable, "-B", str(job_dir / "harness.py"), str(job_dir / "job.json"),
                    str(scratch / "results.jsonl")], env, None
        if uid is not None:
            for folder, _, names in os.walk(scratch):
                for path in [folder] + [os.path.join(folder, n) for n in names]:
                    os.chown(path, uid, uid)
        return bwrap_args(job_dir, scratch, self.student_site, self.data_root, uid, self.limits), None, uid

    def run(self, job_dir, scratch, slot=0):
        """Run the job in `job_dir` once; the harness writes into `scratch`. Returns an Outcome."""
        job_dir, scratch = Path(job_dir), Path(scratch)
        shutil.copytree(self.fonts(), scratch / ".matplotlib", dirs_exist_ok=True)
        command, env, uid = self.command(job_dir, scratch, slot)
        processes = self.limits.processes if uid is not None else user_processes() + self.limits.processes
        results = Results(scratch / "results.jsonl")
        with open(scratch / "stdout.txt", "wb") as out, open(scratch / "stderr.txt", "wb") as err:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                       cwd=scratch, preexec_fn=limiter(self.limits, processes))
        started = time.monotonic()
        cell, cell_started, reason, last_size_check = None, started, None, started
        while process.poll() is None:
            time.sleep(0.1)
            now = time.monotonic()
            current = running_cell(results.update())
            if current != cell:
                cell, cell_started = current, now
            if cell is not None and now - cell_started > self.limits.cell_seconds:
                reason = f"the cell ran longer than {self.limits.cell_seconds:g} s (an infinite loop?) and was stopped"
            elif now - started > self.limits.run_seconds:
                reason = f"the notebook ran longer than {self.limits.run_seconds:g} s in all and was stopped"
            elif now - last_size_check > 1:
                last_size_check = now
                if folder_size(scratch) > self.limits.scratch_mb << 20:
                    reason = f"the notebook wrote more than {self.limits.scratch_mb} MB of files and was stopped"
            if reason:
                self.kill(process)
                break
        process.wait()
        entries = results.update()
        stopped_in = running_cell(entries)
        if reason is None and stopped_in is not None:
            reason = describe_exit(process.returncode)
        if reason is None and process.returncode != 0:
            tail = (scratch / "stderr.txt").read_bytes()[-300:].decode(errors="replace").strip()
            reason = f"the grading harness failed ({tail.splitlines()[-1] if tail else describe_exit(process.returncode)})"
        return Outcome(entries, reason, stopped_in)

    @staticmethod
    def kill(process):
        # the whole group: bwrap, and with it its pid namespace (every process the student started)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
