"""Run a submission's harness in a sandbox, watched from outside.

Inside (bubblewrap): no network; read-only system, Python and student-edition package; one
writable scratch folder on a capped tmpfs; nothing of the course folder, other submissions, the
gradebook or the instructor's sources. The job reaches the harness on stdin and its records come
back on a pipe: the grader reads no file the student's code could write, replace or link.

What the harness sends is checked against the job (each cell's start, then its record, in the
job's order, then the end); anything else stops the run as tampering. The watcher reads pipes
without blocking and in bounded amounts, so nothing the student writes can stall it.

Limits, per sandbox where the machine allows (root: a cgroup, a uid of its own, a mounted tmpfs):
all processes' memory and count together, an equal CPU share, CPU seconds per cell, scratch bytes
and inodes. Without root: per-process rlimits, a wall-clock cell limit and a byte-capped tmpfs.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .confinement import Cgroup, UidLease, mount_scratch, sweep_stale, unmount
from .seccomp import no_user_namespaces

HARNESS = Path(__file__).with_name("harness.py")
RECORD_BYTES = 8 << 20  # one cell's record: its outputs are capped by the harness far below this
OUTPUT_TAIL = 4096      # of the harness's own stdout and stderr, kept to explain a failure
# objects, arrays and strings in one record and in a run's records: each costs the grader 50-100 bytes once
# parsed, 20-30 times its JSON, so millions of empty ones ("{},{},...") would cost GBs; a real record holds a few
# hundred (the harness keeps 50 displays a cell and 20,000 characters a stream)
RECORD_VALUES, RUN_VALUES = 50_000, 500_000

Job = dict[str, Any]     # what the harness runs: {"cells": [...], "seeds": [...], ...} (Sandbox.run)
Record = dict[str, Any]  # the harness's record of one cell, parsed from its JSON line
Stop = dict[str, Any]    # why a run ended early (Outcome.stop)
Paths = dict[str, Path]  # a run's folders: "scratch", "harness", "etc", "fonts"
Command = tuple[list[str], dict[str, str] | None, list[int]]  # argv, environment (None: inherited), fds passed


@dataclass
class Limits:
    cell_seconds: float = 30.0  # CPU seconds per cell, all the sandbox's processes (nbgrader's 30 s; grading needs ~2)
    wall_factor: float = 4.0    # wall clock per cell, in cell_seconds: a sleeping or starved cell ends too
    lift_factor: float = 3.0    # both, for a cell given a second chance (it timed out but defines nothing graded)
    run_seconds: float = 300.0  # wall clock for a whole run of a submission (a job's "run_seconds" may shorten it)
    submission_seconds: float = 600.0  # wall clock for all the runs of one grading (graded again: as much again)
    cpu_seconds: int = 300      # CPU time of each process (rlimit)
    memory_mb: int = 3072       # all processes of a sandbox together (cgroup)
    process_memory_mb: int = 2560  # data segment per process: a single hog gets MemoryError first
    processes: int = 64         # processes and threads of a sandbox
    file_mb: int = 64           # largest file the student's code may write
    scratch_mb: int = 256       # scratch tmpfs
    scratch_inodes: int = 20000  # files and folders in scratch
    output_chars: int = 20000   # kept per cell and stream in the graded notebook
    channel_mb: int = 64        # all the harness may send back


class SandboxError(Exception):
    """The sandbox cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended: `done` maps cell index -> the harness's record; `stop` says why the run
    ended early: {"cell": index or None, "cause": "timed out" | "crashed" | "tampered" | "grader error",
    "detail": text, and for timeouts "limit": "cell" | "run"}, None when every cell ran."""
    done: dict[int, Record]
    stop: Stop | None = None
    output: str = ""  # the tail of the harness's stdout and stderr
    received: int = 0  # bytes the harness sent on its channel


class Channel:
    """The harness's records, checked against the order of the job's cells."""

    order: list[int]
    open_cell: int | None
    violation: str | None
    done: dict[int, Record]

    def __init__(self, cells: Iterable[Mapping[str, Any]], cap_bytes: int):
        self.order, self.cap = [c["index"] for c in cells], cap_bytes
        self.buffer, self.total, self.values, self.position = b"", 0, 0, 0
        self.open_cell, self.ended, self.violation = None, False, None
        self.done = {}

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.total > self.cap:
            return self.violate(f"sent more than {self.cap >> 20} MB of results")
        self.buffer += data
        while not self.violation and b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.record(line)
        if len(self.buffer) > RECORD_BYTES:
            self.violate("sent a record larger than the grader takes")

    def violate(self, what: str) -> None:
        self.violation = self.violation or what

    def record(self, line: bytes) -> None:
        if len(line) > RECORD_BYTES or self.ended:
            return self.violate("wrote into the grader's channel")
        values = line.count(b"{") + line.count(b"[") + line.count(b'"') // 2
        self.values += values
        if values > RECORD_VALUES or self.values > RUN_VALUES:
            return self.violate(f"sent more than {RECORD_VALUES:,} values in a cell's record or {RUN_VALUES:,} in all")
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            return self.violate("wrote into the grader's channel")
        expected = self.order[self.position] if self.position < len(self.order) else None
        if not isinstance(entry, dict):
            self.violate("wrote into the grader's channel")
        elif entry.keys() == {"start"} and self.open_cell is None and same_index(entry["start"], expected):
            self.open_cell = expected
        elif "done" in entry and self.open_cell is not None and same_index(entry["done"], self.open_cell):
            self.done[self.open_cell] = entry
            self.open_cell, self.position = None, self.position + 1
        elif entry == {"end": True} and self.open_cell is None and expected is None:
            self.ended = True
        else:
            self.violate("wrote into the grader's channel")

    def blamed_cell(self) -> int | None:
        """The cell running when something went wrong, else the one that ran last."""
        if self.open_cell is not None:
            return self.open_cell
        return self.order[self.position - 1] if self.position else None


def same_index(value: object, expected: int | None) -> bool:
    return type(value) is int and value == expected


def python_roots() -> list[Path]:
    """The folders the sandbox needs to run this Python and its packages."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    user_site = Path(site.getusersitepackages())
    if user_site.is_dir():
        roots.add(user_site)
    return sorted(r for r in roots if not str(r).startswith("/usr/"))


def instructor_paths() -> list[Path]:
    """Where the instructor's cl_course and grader live: hidden even if inside a bound folder."""
    paths = []
    for name in ("cl_course", "grader"):
        spec = find_spec(name)
        paths += [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    return paths


def bind_with_parents(args: list[str], source: str | Path, target: str | Path, mode: str = "--ro-bind") -> None:
    # bwrap creates missing parents 0700, which a sandbox uid could not traverse
    for parent in reversed(Path(target).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    args += [mode, str(source), str(target)]


def harness_environment(sandbox: Sandbox, student_site: str | Path, scratch: str | Path,
                        fonts: str | Path) -> dict[str, str]:
    """The harness's whole environment (nothing of the grader's is inherited)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(scratch),
           "PYTHONPATH": str(student_site), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": f"{scratch}/.matplotlib", "CL_GRADE_FONTS": str(fonts),
           "IPYTHONDIR": f"{scratch}/.ipython", "TMPDIR": str(scratch), "CL_COURSE_PROFILE": "grading",
           "NBGRADER_EXECUTION": "autograde",
           "CUDA_VISIBLE_DEVICES": "", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "LANG": "C.UTF-8"}
    if sandbox.data_root:
        env["CL_COURSE_DATA"] = "/data" if sandbox.backend == "bubblewrap" else str(sandbox.data_root)
    return env


# What the sandbox keeps of /etc: what the dynamic loader, time zones and shell tools read. The rest
# (users, hosts, the machine's configuration) stays the host's; passwd, group, hosts and hostname are
# written for the sandbox.
ETC_KEPT = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf", "mime.types")


def sandbox_etc(folder: Path, uid: int) -> Path:
    """passwd, group, hosts and hostname that name only the sandbox's own user and loopback."""
    folder.mkdir()
    (folder / "passwd").write_text(f"root:x:0:0::/:/usr/sbin/nologin\nstudent:x:{uid}:{uid}::/scratch:/bin/sh\n")
    (folder / "group").write_text(f"root:x:0:\nstudent:x:{uid}:\n")
    (folder / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (folder / "hostname").write_text("sandbox\n")
    return folder


def etc_binds(written: Path) -> list[str]:
    """bubblewrap's binds of the sandbox's /etc: what ETC_KEPT names of the host's, and the files in `written`."""
    args = []
    for name in ETC_KEPT:
        if os.path.lexists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for path in sorted(written.iterdir()):
        args += ["--ro-bind", str(path), f"/etc/{path.name}"]
    return args


def pipe_holding(data: bytes) -> int:
    """The read end of a pipe that holds `data` and then ends (bubblewrap's --args and --seccomp read it)."""
    read, write = os.pipe()
    os.write(write, data)  # a few KB: within the pipe's buffer
    os.close(write)
    return read


class Bubblewrap:
    """Student code confined by bubblewrap: namespaces, read-only binds, a uid of its own (root), a minimal
    /etc, no new user namespaces (seccomp.py), and its options passed on a pipe (--args), so that the
    sandbox's /proc shows no host path of them."""

    def problem(self) -> str | None:
        if shutil.which("bwrap") is None:
            return ("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap) "
                    "or grade code you trust without a sandbox with --no-sandbox")
        return None

    def command(self, sandbox: Sandbox, paths: Paths, uid: int | None, scratch_mounted: bool,
                channel_fd: int) -> Command:
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--hostname", "sandbox", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
                "--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/etc"]
        args += etc_binds(sandbox_etc(paths["etc"], uid if uid is not None else os.getuid()))
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
        bind_with_parents(args, paths["harness"], "/grader")
        bind_with_parents(args, sandbox.student_site, "/student")
        bind_with_parents(args, paths["fonts"], "/fonts")
        if sandbox.data_root:
            bind_with_parents(args, sandbox.data_root, "/data")
        if scratch_mounted:
            bind_with_parents(args, paths["scratch"], "/scratch", "--bind")
        else:  # not root: bubblewrap's own tmpfs, capped in bytes (not in inodes)
            args += ["--perms", "0700", "--size", str(sandbox.limits.scratch_mb << 20), "--tmpfs", "/scratch"]
        if not any(root.is_relative_to("/tmp") for root in bound):  # else /tmp holds the environment, read-only
            args += ["--symlink", "/scratch", "/tmp"]  # one capped tmpfs for every file the student writes
        args += ["--clearenv", "--chdir", "/scratch"]
        for k, v in harness_environment(sandbox, "/student", "/scratch", "/fonts").items():
            args += ["--setenv", k, v]
        fds = [pipe_holding(b"\0".join(a.encode() for a in args) + b"\0")]
        command = ["bwrap", "--args", str(fds[0])]
        if (bpf := no_user_namespaces()) is not None:
            fds.append(pipe_holding(bpf))
            command += ["--seccomp", str(fds[1])]
        if uid is not None:  # root: drop to the leased uid, so that no sandbox shares another's processes or files
            command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "setpriv", f"--reuid={uid}",
                        f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        return command + [sys.executable, "-B", "/grader/harness.py", str(channel_fd)], None, fds


class Unconfined:
    """Student code run as this user with rlimits only: for code the TA trusts (--no-sandbox)."""

    def problem(self) -> str | None:
        return None

    def command(self, sandbox: Sandbox, paths: Paths, uid: int | None, scratch_mounted: bool,
                channel_fd: int) -> Command:
        env = harness_environment(sandbox, sandbox.student_site, paths["scratch"], paths["fonts"])
        return [sys.executable, "-B", str(paths["harness"] / "harness.py"), str(channel_fd)], env, []


BACKENDS: dict[str, Bubblewrap | Unconfined] = {"bubblewrap": Bubblewrap(), "unconfined": Unconfined()}


def user_processes() -> int:
    """Processes and threads of this uid now (rlimits on processes count all of them)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return count


def preparation(limits: Limits, processes: int, group: Cgroup | None) -> Callable[[], None]:
    def prepare() -> None:  # in the child, before exec
        os.setsid()  # one process group to kill
        if group:
            group.enter()
        for kind, value in ((resource.RLIMIT_DATA, limits.process_memory_mb << 20),
                            (resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_FSIZE, limits.file_mb << 20),
                            (resource.RLIMIT_NPROC, processes), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(kind, (value, value))
    return prepare


def describe_exit(code: int) -> str:
    if code < 0 or code > 128:  # bwrap reports a signal as 128 + its number
        try:
            name = signal.Signals(-code if code < 0 else code - 128).name
        except ValueError:
            return f"the notebook's process exited with status {code}"
        hint = {"SIGKILL": "killed (out of memory?)", "SIGSEGV": "crashed (segmentation fault)",
                "SIGXCPU": "used up its CPU time", "SIGXFSZ": "wrote a file larger than the limit",
                "SIGABRT": "aborted"}.get(name, f"died of {name}")
        return f"the notebook's process {hint}"
    return f"the notebook's process exited with status {code} (sys.exit or os._exit in a cell?)"


def read_available(fd: int, budget: int) -> bytes | None:
    """What the pipe holds now, at most `budget` bytes; b"" at its end, None when empty for now."""
    chunks: list[bytes] = []
    size = 0
    while size < budget:
        try:
            data = os.read(fd, min(1 << 16, budget - size))
        except BlockingIOError:
            break
        if not data:
            return b"".join(chunks) if chunks else b""
        chunks.append(data)
        size += len(data)
    return b"".join(chunks) if chunks else None


@dataclass
class Sandbox:
    """Where and how submissions run: plain data, so that it can be sent to another machine."""
    student_site: Path
    data_root: Path | None = None
    limits: Limits = field(default_factory=Limits)
    backend: str = "bubblewrap"  # or "unconfined" (--no-sandbox)

    def __post_init__(self) -> None:
        self.student_site = Path(self.student_site).resolve()
        if self.data_root is not None:
            self.data_root = Path(self.data_root).resolve()  # a relative root would be bound from bwrap's cwd
            if not self.data_root.is_dir():
                raise SandboxError(f"the data root {self.data_root} is not a folder: pass --data-root or set "
                                   "CL_COURSE_DATA to a torchvision MNIST folder")

    def check(self) -> None:
        """Raise SandboxError unless a trivial job runs here."""
        problem = BACKENDS[self.backend].problem()
        if problem:
            raise SandboxError(problem)
        if os.getuid() == 0 and self.backend == "bubblewrap":
            removed = sweep_stale()
            if removed:
                print(f"grader: removed what a killed grader left behind: {', '.join(removed)}", file=sys.stderr)
        outcome = self.run({"cells": [{"index": 0, "kind": "code", "source": "import cl_course"}], "seeds": []})
        if outcome.stop or not outcome.done:
            said = (outcome.output.strip().splitlines() or [""])[-1]
            what = outcome.stop["detail"] if outcome.stop else "it did not run a cell"
            if said.startswith("bwrap:"):  # bubblewrap itself could not set the sandbox up
                raise SandboxError(f"the sandbox does not start here ({said}): bubblewrap needs user namespaces "
                                   "or root; --no-sandbox grades code you trust unconfined")
            raise SandboxError(f"a trivial notebook does not run in the sandbox ({what}{'; ' + said if said else ''})")
        errors = [o for o in outcome.done[0].get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            error = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
            raise SandboxError(f"the student edition of cl_course does not import in the sandbox ({error}): "
                               "run `python -m grader setup` again")

    def fonts(self) -> Path:
        """matplotlib's font list, built once per process rather than in every run (0.7 s each)."""
        folder = Path(tempfile.gettempdir()) / f"cl-grade-fonts-{os.getuid()}"
        if not (folder / ".done").exists():
            folder.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True,
                           env=dict(os.environ, MPLCONFIGDIR=str(folder)))
            os.chmod(folder, 0o755)
            for f in folder.iterdir():
                os.chmod(f, 0o644)
            (folder / ".done").touch()
        return folder

    def run(self, job: Job) -> Outcome:
        """Run `job` ({"cells": [{"index", "kind", ...}], "seeds": [...], "lifted": [indexes whose
        cell limits are lift_factor times longer], "run_seconds": what is left of the submission's time})
        once; an Outcome."""
        job = dict(job, max_output=self.limits.output_chars)
        root = os.getuid() == 0 and self.backend == "bubblewrap"
        tmp: str | Path  # the folder's name, then its Path
        with tempfile.TemporaryDirectory(prefix=f"cl-grade-{os.getpid()}-") as tmp:
            tmp = Path(tmp)
            paths = {"scratch": tmp / "scratch", "harness": tmp / "grader", "etc": tmp / "etc", "fonts": self.fonts()}
            paths["scratch"].mkdir()
            paths["harness"].mkdir()
            shutil.copy(HARNESS, paths["harness"] / "harness.py")
            (tmp / "job.json").write_text(json.dumps(job))
            lease = UidLease() if root else None  # a UidLease wherever root is (the ignores below)
            mounted = root and mount_scratch(paths["scratch"], self.limits.scratch_mb << 20,
                                             self.limits.scratch_inodes, lease.uid)  # type: ignore[union-attr]
            if root and not mounted:
                os.chown(paths["scratch"], lease.uid, lease.uid)  # type: ignore[union-attr]
            group = Cgroup.create(f"cl-grade-{os.getpid()}-{lease.uid if lease else 0}-{time.monotonic_ns()}",
                                  (self.limits.memory_mb << 20), self.limits.processes) if root else None
            try:
                return self.watch(job, tmp, paths, lease, mounted, group)
            finally:
                if group:
                    group.remove()
                if mounted:
                    unmount(paths["scratch"])
                if lease:
                    lease.release()

    def watch(self, job: Job, tmp: Path, paths: Paths, lease: UidLease | None, mounted: bool,
              group: Cgroup | None) -> Outcome:
        limits = self.limits
        channel_read, channel_write = os.pipe()
        output_read, output_write = os.pipe()
        for fd in (channel_read, output_read):
            os.set_blocking(fd, False)
        command, env, fds = BACKENDS[self.backend].command(self, paths, lease.uid if lease else None, mounted,
                                                           channel_write)
        processes = limits.processes if (lease or group) else user_processes() + limits.processes
        with open(tmp / "job.json", "rb") as job_file:
            process = subprocess.Popen(command, stdin=job_file, stdout=output_write, stderr=output_write, env=env,
                                       cwd=paths["scratch"] if env else None, pass_fds=(channel_write, *fds),
                                       preexec_fn=preparation(limits, processes, group))
        for fd in (channel_write, output_write, *fds):
            os.close(fd)
        channel = Channel(job["cells"], limits.channel_mb << 20)
        lifted = set(job.get("lifted", ()))
        run_seconds = min(limits.run_seconds, job.get("run_seconds", limits.run_seconds))
        output, stop, open_fds = b"", None, {channel_read, output_read}
        started = time.monotonic()
        cell, cell_wall, cell_cpu = None, started, 0.0
        try:
            while open_fds and stop is None and not channel.ended:
                ready, _, _ = select.select(list(open_fds), [], [], 0.1)
                for fd in ready:
                    data = read_available(fd, 4 << 20)  # bounded per round: the clock below is always checked
                    if data == b"":
                        open_fds.discard(fd)
                    elif data and fd == channel_read:
                        channel.feed(data)
                    elif data:
                        output = (output + data)[-OUTPUT_TAIL:]
                now, cpu = time.monotonic(), group.cpu_seconds() if group else None
                if channel.open_cell != cell:
                    cell, cell_wall, cell_cpu = channel.open_cell, now, cpu or 0.0
                seconds = limits.cell_seconds * (limits.lift_factor if cell in lifted else 1)
                wall = seconds * (limits.wall_factor if cpu is not None else 1)
                if channel.violation:
                    stop = {"cell": channel.blamed_cell(), "cause": "tampered",
                            "detail": f"the notebook's code {channel.violation}"}
                elif cell is not None and cpu is not None and cpu - cell_cpu > seconds:
                    stop = {"cell": cell, "cause": "timed out", "limit": "cell",
                            "detail": f"the cell used more than {seconds:g} s of CPU time (an infinite loop?) "
                                      "and was stopped"}
                elif cell is not None and now - cell_wall > wall:
                    stop = {"cell": cell, "cause": "timed out", "limit": "cell",
                            "detail": f"the cell ran longer than {wall:g} s (waiting or an infinite loop?) "
                                      "and was stopped"}
                elif now - started > run_seconds:
                    stop = {"cell": cell, "cause": "timed out", "limit": "run",
                            "detail": f"the notebook ran longer than {run_seconds:g} s in all and was stopped"}
        finally:
            kill(process)
            process.wait()
            os.close(channel_read), os.close(output_read)  # type: ignore[func-returns-value]
        stop = stop or (None if channel.ended else ended_early(channel, process.returncode, output))
        return Outcome(channel.done, stop, output.decode("utf-8", "replace"), channel.total)


def ended_early(channel: Channel, returncode: int, output: bytes) -> Stop:
    """Why the harness's process ended before the job did."""
    if channel.open_cell is not None:
        return {"cell": channel.open_cell, "cause": "crashed", "detail": describe_exit(returncode)}
    tail = output.decode("utf-8", "replace").strip().splitlines()
    said = tail[-1] if tail else describe_exit(returncode)
    return {"cell": None, "cause": "grader error", "detail": f"the grading harness failed ({said})"}


def kill(process: subprocess.Popen[bytes]) -> None:
    # the whole group: bwrap, and with it its pid namespace (every process the student started)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
