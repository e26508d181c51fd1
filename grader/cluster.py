"""Where submissions run: here (a thread per sandbox) or on a Dask cluster.

autograde hands each submission's run (autograde.run_cells: plain data in, plain data out) to a
pool whose submit() returns concurrent futures; repairing, judging, the gradebook and the reports
stay in the TA's process. On Dask, the student edition of cl_course travels with the job (packed
once, unpacked once per worker into a cache keyed by its hash), so a worker needs only the repo set
up (the same Python environment), bubblewrap, and the data root at the same path. Dask reruns the
tasks of a worker that dies on another worker; each result is recorded once, by the TA's process.
"""
import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import tempfile
import zipfile
from pathlib import Path

RETRIES = 3          # times a submission's run may be lost with its worker before it counts as failed
CONNECT_SECONDS = 20  # to reach a scheduler


class ClusterError(Exception):
    """The cluster cannot be used; the message says why and what to do."""


def packed(folder):
    """(hash, zip bytes) of a folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest()[:16], data


def unpacked(site):
    """The packed student site as a folder on this machine, unpacked once per hash."""
    digest, data = site
    folder = Path(tempfile.gettempdir()) / f"cl-grade-site-{digest}"
    if not folder.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=f"cl-grade-site-{digest}-"))
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(partial)
        os.chmod(partial, 0o755)  # a sandbox's own uid reads it
        with contextlib.suppress(OSError):  # another task on this worker got there first
            partial.rename(folder)
    return folder


def on_worker(site, sandbox):
    return dataclasses.replace(sandbox, student_site=unpacked(site))


def run_remote(site, run, sandbox, cells, seeds):
    """On a worker: `run` (autograde.run_cells) with the sandbox pointed at this worker's copy."""
    return run(on_worker(site, sandbox), cells, seeds)


def worker_problem(site, sandbox):
    """Why this worker cannot grade, or None (run on every worker before grading starts)."""
    from .sandbox import SandboxError
    try:
        on_worker(site, sandbox).check()
    except SandboxError as e:
        return str(e)
    return None


class DaskPool:
    """submit(run_cells, sandbox, cells, seeds) -> a concurrent future, run on the cluster."""

    def __init__(self, client, site):
        self.executor, self.site = client.get_executor(pure=False), site  # pure=False: equal jobs both run

    def submit(self, run, *args):
        return self.executor.submit(run_remote, self.site, run, *args)


@contextlib.contextmanager
def open_pool(sandbox, workers=1, scheduler=None, cluster=None):
    """The pool autograde runs submissions on: None (autograde's own threads, here), a LocalCluster
    of `workers` processes (cluster="local"), or the Dask cluster at `scheduler`. A Dask pool is
    checked first: every worker must run a trivial notebook in its sandbox."""
    if scheduler and cluster:
        raise ClusterError("give --scheduler ADDRESS or --cluster local, not both")
    if cluster not in (None, "local"):
        raise ClusterError(f"--cluster takes 'local' (got {cluster!r}); for another cluster pass --scheduler ADDRESS")
    if not (scheduler or cluster):
        yield None  # autograde runs `workers` threads here
        return
    import dask
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": RETRIES}))
        if cluster:
            local = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                     dashboard_address=None, silence_logs=logging.ERROR,
                                                     env={"OMP_NUM_THREADS": "1"}))
            scheduler = local.scheduler_address
        try:
            client = stack.enter_context(Client(scheduler, timeout=f"{CONNECT_SECONDS}s"))
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__}): start one with "
                               "`dask scheduler` and workers with `dask worker ADDRESS --nthreads 1`") from None
        if not client.scheduler_info()["workers"]:
            raise ClusterError(f"the scheduler at {scheduler} has no workers: start some with "
                               f"`OMP_NUM_THREADS=1 dask worker {scheduler} --nthreads 1`")
        site = packed(sandbox.student_site)
        problems = {w: p for w, p in client.run(worker_problem, site, sandbox).items() if p}
        if problems:
            worker, problem = next(iter(problems.items()))
            raise ClusterError(f"worker {worker} cannot grade: {problem}")
        yield DaskPool(client, client.scatter(site, broadcast=True))
