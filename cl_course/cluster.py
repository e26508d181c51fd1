"""Where a table's runs go when one machine is not enough: a Dask cluster, the engine the grader grades on too. Either
`--cluster local --workers N` (a LocalCluster of N one-thread processes here) or `--scheduler ADDRESS` (one an
instructor started on more machines: `dask scheduler`, then `OMP_NUM_THREADS=1 dask worker ADDRESS --nthreads 1`
on each). A worker needs the same Python environment and the data root at the same path; each run is one task
(table.run_cell: a Cell and a RunConfig in, plain data out), and Dask reruns the runs of a worker that dies.
"""
import contextlib
import logging

CONNECT_SECONDS = 20  # to reach a scheduler


@contextlib.contextmanager
def dask_client(workers=2, scheduler=None, cluster=None, config=None):
    """A Dask Client of the cluster asked for, or None when neither option is given; `config`: Dask settings a
    LocalCluster's scheduler reads when it starts (a running scheduler has its own). One-line ValueErrors."""
    if scheduler and cluster:
        raise ValueError("give --scheduler ADDRESS or --cluster local, not both")
    if cluster not in (None, "local"):
        raise ValueError(f"--cluster takes 'local' (got {cluster!r}); for another cluster pass --scheduler ADDRESS")
    if not (scheduler or cluster):
        yield None
        return
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--scheduler and --cluster need Dask: pip install distributed (the grader extra has it)") \
            from None
    with contextlib.ExitStack() as stack:
        stack.enter_context(dask.config.set(config or {}))
        if cluster:
            local = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                     dashboard_address=None, silence_logs=logging.ERROR,
                                                     env={"OMP_NUM_THREADS": "1"}))
            scheduler = local.scheduler_address
        try:
            client = stack.enter_context(Client(scheduler, timeout=f"{CONNECT_SECONDS}s"))
        except (OSError, TimeoutError) as e:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__}): start one with "
                             "`dask scheduler` and workers with `dask worker ADDRESS --nthreads 1`") from None
        if not client.scheduler_info()["workers"]:
            raise ValueError(f"the scheduler at {scheduler} has no workers: start some with "
                             f"`OMP_NUM_THREADS=1 dask worker {scheduler} --nthreads 1`")
        yield client


@contextlib.contextmanager
def dask_pool(workers=2, scheduler=None, cluster=None):
    """A concurrent.futures Executor on the Dask cluster asked for, or None when neither option is given."""
    with dask_client(workers, scheduler, cluster) as client:
        yield client and client.get_executor(pure=False)  # pure=False: two equal runs both run
