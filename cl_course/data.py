"""MNIST as tensors on the run's device: Permuted MNIST (HW14) and Split MNIST, in the three scenarios.

No per-sample PIL transforms: images are normalised once and batches are taken by index.
That is where HW14 spent its time (17-18 minutes per method on a V100).
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
REPO = Path(__file__).resolve().parent.parent


class DataError(RuntimeError):
    """MNIST could not be found or fetched; the message says what to do."""


@dataclass
class Task:
    """One task: flattened, normalised images and labels, all on one device."""
    name: str
    x_train: torch.Tensor  # [N, 784] float32
    y_train: torch.Tensor  # [N] int64
    x_test: torch.Tensor   # [M, 784] float32
    y_test: torch.Tensor   # [M] int64
    head: int = 0          # output head used with a multi-head model
    classes: tuple = tuple(range(10))  # original digits in this task


def data_root(root=None):
    """--data-root, else $CL_COURSE_DATA, else data/ in the repo (data/ in the working directory
    when the package is installed from a wheel, as on Colab, rather than used from a checkout)."""
    default = REPO / "data" if (REPO / "pyproject.toml").exists() else Path("data")
    # absolute: a relative root (CL_COURSE_DATA=../shared/data) must mean the same in a subprocess or a sandbox
    return Path(root or os.environ.get("CL_COURSE_DATA") or default).expanduser().resolve()


def load_mnist(root=None):
    """Return ((x_train, y_train), (x_test, y_test)) as uint8 [N, 28, 28] and int64 [N] CPU tensors.

    Downloads through torchvision when the files are absent. The number of images comes from
    the files: the offline copy used in CI holds 24,680 training images, not 60,000.
    """
    root = data_root(root)
    raw = root / "MNIST" / "raw"
    files = [raw / f"{split}-{kind}-idx{dims}-ubyte" for split in ("train", "t10k")
             for kind, dims in (("images", 3), ("labels", 1))]
    if all(f.exists() for f in files):  # torchvision's own files: read them without importing it (3 s)
        x_train, y_train, x_test, y_test = map(read_idx, files)
        return (x_train, y_train.long()), (x_test, y_test.long())
    from torchvision.datasets import MNIST

    sets = []
    for train in (True, False):
        try:
            ds = MNIST(root=str(root), train=train, download=True)
        except Exception as e:  # torchvision raises RuntimeError, URLError, OSError... when offline
            raise DataError(
                f"MNIST is not under {root}/MNIST and could not be downloaded ({type(e).__name__}); "
                "connect to the internet once, or point --data-root / CL_COURSE_DATA at a torchvision MNIST root"
            ) from None
        sets.append((ds.data, ds.targets.long()))
    return sets[0], sets[1]


def read_idx(path):
    """An MNIST idx file as a uint8 tensor, shaped as its header says."""
    data = Path(path).read_bytes()
    ndim = data[3]
    shape = np.frombuffer(data, ">i4", ndim, 4).tolist()
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy())


def normalise(images):
    """uint8 [N, 28, 28] -> float32 [N, 784], as ToTensor + Normalize(0.1307, 0.3081)."""
    return ((images.float() / 255.0 - MNIST_MEAN) / MNIST_STD).reshape(len(images), -1)


def pixel_permutations(n_tasks, seed=0):
    """Task 1 is the identity; tasks 2.. draw np.random.permutation(784) after np.random.seed(seed), as HW14."""
    rng = np.random.RandomState(seed)
    return [np.arange(784)] + [rng.permutation(784) for _ in range(n_tasks - 1)]


def subset_indices(n, size, seed):
    """The first `size` of a seeded shuffle of range(n): a fixed, class-balanced-in-expectation subset."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]


SCENARIOS = ("task", "domain", "class")  # van de Ven & Tolias: the task told at test time, not told, inferred


def permuted_mnist(n_tasks=5, root=None, device="cpu", subset=None, permutation_seed=0, subset_seed=0,
                   test_subset=None, scenario="domain"):
    """HW14's Permuted MNIST: the same images under a fixed pixel permutation per task.
    `subset` and `test_subset` cap the training and test samples per task.
    domain: digits 0-9 in one shared head (HW14); task: one head per task; class: task t's digit d is
    class 10 t + d, one shared head of 10 x tasks outputs."""
    (xtr, ytr), (xte, yte) = load_mnist(root)
    keep = subset_indices(len(xtr), subset, subset_seed)
    xtr, ytr = normalise(xtr[keep]).to(device), ytr[keep].to(device)
    keep = subset_indices(len(xte), test_subset, subset_seed + 1)
    xte, yte = normalise(xte[keep]).to(device), yte[keep].to(device)
    tasks = []
    for t, perm in enumerate(pixel_permutations(n_tasks, permutation_seed)):
        perm = torch.as_tensor(perm, device=device)
        shift = 10 * t if scenario == "class" else 0
        tasks.append(Task(f"task {t + 1}", xtr[:, perm], ytr + shift, xte[:, perm], yte + shift,
                          head=t if scenario == "task" else 0, classes=tuple(range(shift, shift + 10))))
    return tasks


def split_mnist(scenario="task", root=None, device="cpu", subset=None, subset_seed=0, test_subset=None, n_tasks=5):
    """Split MNIST: 5 tasks of two digits (0/1, 2/3, ... 8/9).

    task:   labels 0/1 within the task, one head per task (the model is told the task).
    domain: labels 0/1 within the task, one shared head (the task is not told).
    class:  the digits themselves as labels 0..9, one shared head.
    `subset` and `test_subset` cap the training and test samples per task.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose task, domain or class")
    (xtr, ytr), (xte, yte) = load_mnist(root)
    tasks = []
    for t in range(n_tasks):
        digits = (2 * t, 2 * t + 1)
        parts = []
        for (x, y), size, seed in (((xtr, ytr), subset, subset_seed + t),
                                   ((xte, yte), test_subset, subset_seed + 100 + t)):
            mask = (y == digits[0]) | (y == digits[1])
            keep = subset_indices(int(mask.sum()), size, seed)
            xs, ys = normalise(x[mask][keep]), y[mask][keep]
            parts.append((xs, ys if scenario == "class" else ys - digits[0]))
        (xa, ya), (xb, yb) = parts
        tasks.append(Task(f"digits {digits[0]}/{digits[1]}", xa.to(device), ya.to(device), xb.to(device), yb.to(device),
                          head=t if scenario == "task" else 0, classes=digits))
    return tasks


@dataclass(frozen=True)
class Benchmark:
    """A benchmark is one loading function and a line in BENCHMARKS."""
    load: object          # (config, device) -> [Task]
    hidden: tuple         # the MLP's hidden layers in the papers that use it
    scenario: str         # the scenario a run gets when it names none
    max_tasks: int | None  # None: any number
    protocol: str         # the command line's default protocol: HW14's on its benchmark, else the papers'


def load_permuted(config, device):
    return permuted_mnist(config.tasks, config.data_root, device, config.subset, config.permutation_seed,
                          subset_seed=config.seed, test_subset=config.test_subset, scenario=config.the_scenario())


def load_split(config, device):
    return split_mnist(config.the_scenario(), config.data_root, device, config.subset, subset_seed=config.seed,
                       test_subset=config.test_subset, n_tasks=config.tasks)


BENCHMARKS = {
    "permuted-mnist": Benchmark(load_permuted, (1024, 512, 256), "domain", max_tasks=None, protocol="hw14"),  # HW14
    "split-mnist": Benchmark(load_split, (400, 400), "class", max_tasks=5, protocol="paper"),  # van de Ven & Tolias
}


def batch_indices(n, batch_size, shuffle=False, generator=None, device="cpu", iterations=None):
    """Index blocks of range(n), consecutive or shuffled; with `iterations`, that many blocks, reshuffling
    at the end of each pass."""
    done = 0
    while True:
        order = torch.randperm(n, generator=generator).to(device) if shuffle else torch.arange(n, device=device)
        for idx in order.split(batch_size):
            yield idx
            done += 1
            if done == iterations:
                return
        if iterations is None:
            return


def index_batches(x, y, batch_size, shuffle=False, generator=None):
    """Yield (x[idx], y[idx]) for consecutive or shuffled index blocks; the data stays where it is."""
    for idx in batch_indices(len(x), batch_size, shuffle, generator, x.device):
        yield x[idx], y[idx]
