"""Per-sandbox resource limits that rlimits cannot give: a control group (total memory, process
count and CPU share of everything one submission starts, and the CPU time it used), a uid no other
sandbox holds, and a scratch folder on a size- and inode-capped tmpfs.

Each needs root (or a delegated cgroup) and is None where the machine does not allow it; the
sandbox then falls back to per-process rlimits and a wall-clock cell limit (see README).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
FIRST_UID, UIDS = 61000, 1000  # sandbox uids: 61000 .. 61999, each held by one sandbox at a time
OWNED = re.compile(r"cl-grade-(\d+)-")  # a sandbox's cgroup and scratch folder name the grader's pid


def own_cgroups(text: str | None = None) -> dict[str, str]:
    """{controller or "" for cgroup v2: this process's cgroup path}, from /proc/self/cgroup."""
    out = {}
    for line in (text if text is not None else Path("/proc/self/cgroup").read_text()).splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


class Cgroup:
    """One sandbox's control group. cgroup v2 (the unified hierarchy) when this process's cgroup can
    enable the memory, pids and cpu controllers for its children, else v1's memory, pids, cpuacct
    (and cpu) hierarchies. A group gets the default CPU weight, so sandboxes share CPUs equally."""

    def __init__(self, dirs: dict[str, Path], version: int):
        self.dirs, self.version = dirs, version  # {controller: folder}; v2: {"": folder}

    @classmethod
    def create(cls, name: str, memory_bytes: int, processes: int, root: Path = CGROUP_ROOT,
               own: Mapping[str, str] | None = None) -> Cgroup | None:
        """A new group with these limits, or None where groups cannot be made here."""
        own = own if own is not None else own_cgroups()
        try:
            if (root / "cgroup.controllers").exists() and "" in own:
                parent = root / own[""].lstrip("/")
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                group = cls({"": parent / name}, 2)
            elif all((root / c).is_dir() and c in own for c in ("memory", "pids", "cpuacct")):
                # "cpu" (optional) gives the group its own CPU share: one sandbox's spinning processes
                # then cannot starve another's
                controllers = [c for c in ("memory", "pids", "cpuacct", "cpu") if (root / c).is_dir() and c in own]
                group = cls({c: root / c / own[c].lstrip("/") / name for c in controllers}, 1)
            else:
                return None
        except OSError:
            return None
        try:
            for d in group.dirs.values():
                d.mkdir()
            group.write("memory", "memory.max" if group.version == 2 else "memory.limit_in_bytes", memory_bytes)
            if group.version == 2:
                group.write("memory", "memory.swap.max", 0)
            group.write("pids", "pids.max", processes)
            return group
        except OSError:
            group.remove()  # half made (one controller's folder refused): nothing is left behind
            return None

    def folder(self, controller: str) -> Path:
        return self.dirs[controller if controller in self.dirs else ""]

    def write(self, controller: str, name: str, value: int) -> None:
        (self.folder(controller) / name).write_text(str(value))

    def enter(self) -> None:
        """Move the calling process in (run in the child before exec: its descendants follow)."""
        for d in self.dirs.values():
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def cpu_seconds(self) -> float:
        try:
            if self.version == 2:
                stat = dict(line.split() for line in (self.folder("cpu") / "cpu.stat").read_text().splitlines())
                return int(stat["usage_usec"]) / 1e6
            return int((self.folder("cpuacct") / "cpuacct.usage").read_text()) / 1e9
        except (OSError, KeyError, ValueError):
            return 0.0

    def pids(self) -> list[int]:
        """The processes in the group, read from every folder it has (a v1 group a killed grader left half
        made may lack some controllers' folders)."""
        found: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        return sorted(found)

    def remove(self) -> None:
        """Kill whatever is left in the group, then delete it."""
        for _ in range(50):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                d.rmdir()


class UidLease:
    """A uid no other sandbox on this machine holds (a lock file per uid), so that per-uid process
    limits and file ownership never mix two sandboxes, also of two graders."""

    def __init__(self, folder: Path | None = None):
        folder = folder or Path(tempfile.gettempdir()) / "cl-grade-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for uid in range(FIRST_UID, FIRST_UID + UIDS):
            handle = open(folder / str(uid), "w")  # noqa: SIM115 (held open: the lock lives as long as the lease)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.uid, self.handle = uid, handle
            return
        raise RuntimeError(f"all {UIDS} sandbox uids are in use")

    def release(self) -> None:
        self.handle.close()


def mount_scratch(folder: Path, size_bytes: int, inodes: int, uid: int) -> bool:
    """Mount a tmpfs capped in bytes and inodes on `folder`, owned by `uid`; False where mounting is
    not allowed."""
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={uid}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def stale_cgroups(root: Path = CGROUP_ROOT, own: Mapping[str, str] | None = None) -> list[Cgroup]:
    """[Cgroup] of sandboxes whose grader process is gone (killed: out of memory, a timeout, Ctrl-C twice)."""
    own = own if own is not None else own_cgroups()
    found = []
    if (root / "cgroup.controllers").exists() and "" in own:
        parents = {"": root / own[""].lstrip("/")}
    else:
        parents = {c: root / c / own[c].lstrip("/") for c in ("memory", "pids", "cpuacct", "cpu") if c in own}
    names = set()
    for parent in parents.values():
        with contextlib.suppress(OSError):
            names |= {d.name for d in parent.iterdir() if d.is_dir() and OWNED.match(d.name)}
    for name in sorted(names):
        if gone(int(OWNED.match(name).group(1))):  # type: ignore[union-attr]  # `names` holds only OWNED's matches
            dirs = {c: parent / name for c, parent in parents.items() if (parent / name).is_dir()}
            found.append(Cgroup(dirs, 2 if "" in parents else 1))
    return found


def stale_scratches(mounts_text: str | None = None) -> list[Path]:
    """Mount points of sandbox scratch tmpfs whose grader process is gone."""
    text = mounts_text if mounts_text is not None else Path("/proc/self/mounts").read_text()
    found = []
    for line in text.splitlines():
        fields = line.split()
        target = fields[1] if len(fields) > 2 and fields[2] == "tmpfs" else ""
        m = OWNED.search(Path(target).parent.name) if target.endswith("/scratch") else None
        if m and gone(int(m.group(1))):
            found.append(Path(target.replace("\\040", " ")))
    return found


def sweep_stale() -> list[str]:
    """Remove what killed graders left behind on this machine (their processes, cgroups, scratch mounts and
    folders); a list of what was removed. Run when grading starts; needs root, like what it removes."""
    removed = []
    for group in stale_cgroups():
        group.remove()
        removed += [str(d) for d in group.dirs.values()]
    for scratch in stale_scratches():
        unmount(scratch)
        shutil.rmtree(scratch.parent, ignore_errors=True)
        removed.append(str(scratch))
    return removed
