"""Where submissions run: here (a thread per sandbox) or on a Dask cluster.

autograde hands each submission's run (autograde.run_cells: plain data in, a RunResult of plain data out) to a
pool whose submit() returns concurrent futures; repairing, judging, the gradebook and the reports
stay in the TA's process. On Dask, the student edition of cl_course travels in a worker plugin (packed
once, unpacked once per worker machine into a cache keyed by its hash, by every worker that joins, a
restarted one too), so a worker needs only the repo set up (the same Python environment), bubblewrap,
and the data root at the same path. Dask reruns the tasks of a worker that dies on another worker;
each result is recorded once, by the TA's process.

Why a plugin and not scattered data: Dask's active memory manager drops the replicas a broadcast
made, so the one worker left holding the site can die with it, and every run still queued then
fails for want of its input (seen: a killed worker cost three students their marks).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future as ConcurrentFuture
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from distributed.diagnostics.plugin import WorkerPlugin  # the grader extra has Dask

if TYPE_CHECKING:
    from distributed import Client, Worker

    from .sandbox import Sandbox

RETRIES = 3  # times a submission's run may be lost with its worker before it counts as failed

Site = tuple[str, bytes]  # the student site packed: (hash, zip bytes)
Cells = list[dict[str, Any]]  # the harness's cells of one submission (autograde.job_cells)
T = TypeVar("T")


class ClusterError(Exception):
    """The cluster cannot be used; the message says why and what to do."""


def packed(folder: str | Path) -> Site:
    """(hash, zip bytes) of a folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest()[:16], data


def site_cache() -> Path:
    """This user's folder of unpacked sites. Its name is predictable, so one another user made
    first (and could fill with a cl_course of their own) is refused."""
    cache = Path(tempfile.gettempdir()) / f"cl-grade-sites-{os.getuid()}"
    cache.mkdir(mode=0o755, exist_ok=True)
    info = cache.lstat()
    if info.st_uid != os.getuid() or not cache.is_dir() or cache.is_symlink() or info.st_mode & 0o022:
        raise ClusterError(f"{cache} is not a folder of this user's that only it can write: remove it")
    return cache


def unpacked(site: Site) -> Path:
    """The packed student site as a folder on this machine, unpacked once per hash."""
    digest, data = site
    folder = site_cache() / digest
    if not folder.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=f"{digest}-", dir=folder.parent))
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(partial)
        for path in [partial, *partial.rglob("*")]:  # a sandbox's own uid reads it, whatever this umask
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            partial.rename(folder)
        except OSError:  # another worker on this machine got there first
            shutil.rmtree(partial)
    return folder


class ShipSite(WorkerPlugin):
    """A Dask worker plugin: every worker, on joining, unpacks the student site (once per machine)."""

    def __init__(self, site: Site):
        self.site = site
        self.name = f"cl-grade-site-{site[0]}"  # Dask keeps one plugin per name: a second grading replaces it

    def setup(self, worker: Worker) -> None:
        unpacked(self.site)


def on_worker(digest: str, sandbox: Sandbox) -> Sandbox:
    """The sandbox pointed at this machine's copy of the site the plugin unpacked."""
    folder = site_cache() / digest
    if not folder.is_dir():
        raise ClusterError(f"this worker has no student site {digest}: it joined without the grader's plugin")
    return dataclasses.replace(sandbox, student_site=folder)


def run_remote(digest: str, run: Callable[[Sandbox, Cells, list[int]], T], sandbox: Sandbox, cells: Cells,
               seeds: list[int]) -> T:
    """On a worker: `run` (autograde.run_cells) with the sandbox pointed at this worker's copy."""
    return run(on_worker(digest, sandbox), cells, seeds)


def worker_problem(digest: str, sandbox: Sandbox) -> str | None:
    """Why this worker cannot grade, or None (run on every worker before grading starts)."""
    from .sandbox import SandboxError
    if sandbox.data_root and not sandbox.data_root.is_dir():
        return (f"the data root {sandbox.data_root} is not there: every worker needs it at the same path as "
                "the TA's machine (or pass --data-root with a path that all of them have)")
    try:
        on_worker(digest, sandbox).check()
    except (SandboxError, ClusterError) as e:
        return str(e)
    return None


class DaskPool:
    """submit(run_cells, sandbox, cells, seeds) -> a concurrent future, run on the cluster."""

    def __init__(self, client: Client, digest: str):
        self.executor, self.digest = client.get_executor(pure=False), digest  # pure=False: equal jobs both run

    def submit(self, run: Callable[..., T], *args: object) -> ConcurrentFuture[T]:
        return self.executor.submit(run_remote, self.digest, run, *args)


def check_workers(client: Client, digest: str, sandbox: Sandbox) -> None:
    """Every worker runs a trivial notebook in its sandbox, as a task (a few seconds: not on its
    event loop), before any submission is sent."""
    workers = list(client.scheduler_info()["workers"])
    futures = [client.submit(worker_problem, digest, sandbox, workers=[w], allow_other_workers=False, pure=False)
               for w in workers]
    for worker, problem in zip(workers, client.gather(futures), strict=True):
        if problem:
            raise ClusterError(f"worker {worker} cannot grade: {problem}")


@contextlib.contextmanager
def open_pool(sandbox: Sandbox, workers: int = 1, scheduler: str | None = None,
              cluster: str | None = None) -> Iterator[DaskPool | None]:
    """The pool autograde runs submissions on: None (autograde's own threads, here), a LocalCluster
    of `workers` processes (cluster="local"), or the Dask cluster at `scheduler`. A Dask pool is
    checked first: every worker must run a trivial notebook in its sandbox."""
    from cl_course.cluster import dask_client

    with contextlib.ExitStack() as stack:
        try:  # the allowed failures: a LocalCluster's scheduler reads them; a running scheduler has its own
            client = stack.enter_context(dask_client(workers, scheduler, cluster,
                                                     {"distributed.scheduler.allowed-failures": RETRIES}))
        except ValueError as e:
            raise ClusterError(str(e)) from None
        if client is None:
            yield None  # autograde runs `workers` threads here
            return
        site = packed(sandbox.student_site)
        client.register_plugin(ShipSite(site))  # waits for every worker's setup
        check_workers(client, site[0], sandbox)
        yield DaskPool(client, site[0])
