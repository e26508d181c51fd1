import numpy as np
import pytest
import torch

from cl_course import data
from cl_course.data import (DataError, index_batches, load_mnist, normalise, permuted_mnist, pixel_permutations,
                            split_mnist)


def test_permutations_are_hw14s():
    perms = pixel_permutations(5, seed=0)
    assert len(perms) == 5
    np.testing.assert_array_equal(perms[0], np.arange(784))  # task 1 is the identity
    np.random.seed(0)  # HW14: np.random.seed(0), then np.random.permutation(784) per further task
    for p in perms[1:]:
        np.testing.assert_array_equal(p, np.random.permutation(784))
    for p in perms:
        assert sorted(p.tolist()) == list(range(784))
    assert not np.array_equal(perms[1], perms[2])
    assert not np.array_equal(pixel_permutations(3, seed=1)[1], perms[1])


def test_normalise_is_totensor_then_normalize():
    images = torch.tensor([[[0, 255], [128, 64]]], dtype=torch.uint8)
    x = normalise(images)
    assert x.shape == (1, 4) and x.dtype == torch.float32
    expected = (torch.tensor([0, 255, 128, 64]) / 255.0 - 0.1307) / 0.3081
    torch.testing.assert_close(x[0], expected)


def test_index_batches_cover_every_sample_once():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    got = torch.cat([b for _, b in index_batches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(got.tolist()) == list(range(10))
    assert [len(b) for _, b in index_batches(x, y, 4)] == [4, 4, 2]


def test_permuted_mnist_from_the_offline_copy(data_root):
    (xtr, _), (xte, _) = load_mnist(data_root)
    tasks = permuted_mnist(3, data_root)
    assert len(tasks[0].x_train) == len(xtr)  # the sample count comes from the files (24,680 offline)
    assert len(tasks[0].x_test) == len(xte) == 10000
    perms = pixel_permutations(3)
    for t, perm in zip(tasks, perms, strict=False):
        assert t.x_train.shape[1] == 784
        torch.testing.assert_close(t.x_train, tasks[0].x_train[:, torch.as_tensor(perm)])
        torch.testing.assert_close(t.x_test, tasks[0].x_test[:, torch.as_tensor(perm)])
        assert torch.equal(t.y_train, tasks[0].y_train)
    assert abs(tasks[0].x_train.mean().item()) < 0.1 and abs(tasks[0].x_train.std().item() - 1) < 0.1


def test_subset_is_fixed_and_sized(data_root):
    a = permuted_mnist(2, data_root, subset=500, subset_seed=7)
    b = permuted_mnist(2, data_root, subset=500, subset_seed=7)
    assert len(a[0].x_train) == 500 and torch.equal(a[1].x_train, b[1].x_train)
    assert len(a[0].y_train.unique()) == 10
    assert len(permuted_mnist(1, data_root, subset=10**6)[0].x_train) == len(load_mnist(data_root)[0][0])


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_split_mnist_scenarios(data_root, scenario):
    tasks = split_mnist(scenario, data_root, subset=300)
    assert len(tasks) == 5
    for t, task in enumerate(tasks):
        assert task.classes == (2 * t, 2 * t + 1)
        assert len(task.x_train) == 300
        labels = set(task.y_train.tolist()) | set(task.y_test.tolist())
        assert labels == ({2 * t, 2 * t + 1} if scenario == "class" else {0, 1})
        assert task.head == (t if scenario == "task" else 0)
    with pytest.raises(ValueError, match="scenario"):
        split_mnist("incremental", data_root)


def test_missing_data_offline_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    message = str(e.value)
    assert "\n" not in message and str(tmp_path) in message and "CL_COURSE_DATA" in message


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CL_COURSE_DATA", "../shared/data")  # relative, as the README writes it
    assert data.data_root("elsewhere") == tmp_path / "elsewhere"
    assert data.data_root() == tmp_path.parent / "shared" / "data"  # absolute: a sandbox or a kernel elsewhere agrees
    monkeypatch.delenv("CL_COURSE_DATA")
    assert data.data_root() == data.REPO / "data"  # a source checkout
    monkeypatch.setattr(data, "REPO", tmp_path / "site-packages")  # an installed wheel: no pyproject.toml there
    assert data.data_root() == tmp_path / "data"


def test_raw_files_read_without_torchvision_equal_torchvisions(data_root):
    from torchvision.datasets import MNIST
    (x_train, y_train), (x_test, y_test) = load_mnist(data_root)
    for train, x, y in ((True, x_train, y_train), (False, x_test, y_test)):
        reference = MNIST(root=str(data_root), train=train, download=False)
        assert torch.equal(x, reference.data) and torch.equal(y, reference.targets.long())
        assert x.dtype == torch.uint8 and y.dtype == torch.int64


def test_split_mnist_test_subset_and_fewer_tasks(data_root):
    tasks = split_mnist("class", data_root, subset=200, test_subset=50, n_tasks=3)
    assert len(tasks) == 3 and all(len(t.x_test) == 50 and len(t.x_train) == 200 for t in tasks)
    assert set(tasks[2].y_test.tolist()) <= {4, 5}


@pytest.mark.parametrize("scenario, heads, labels", [("domain", {0}, set(range(10))), ("task", {0, 1}, set(range(10))),
                                                     ("class", {0}, set(range(20)))])
def test_permuted_mnist_scenarios(data_root, scenario, heads, labels):
    """domain: HW14's shared head; task: one head per task; class: task t's digit d is class 10 t + d."""
    tasks = permuted_mnist(2, data_root, subset=300, test_subset=100, scenario=scenario)
    assert {t.head for t in tasks} == heads
    assert set(torch.cat([t.y_train for t in tasks]).tolist()) == labels
    assert tasks[1].classes == ((10, *range(11, 20)) if scenario == "class" else tuple(range(10)))
    assert torch.equal(tasks[0].y_train % 10, tasks[1].y_train % 10)  # the same images, relabelled or not


def test_every_benchmark_loads_through_its_table_entry(data_root):
    from cl_course.config import RunConfig
    from cl_course.data import BENCHMARKS
    for name, benchmark in BENCHMARKS.items():
        config = RunConfig(benchmark=name, tasks=2, subset=100, test_subset=20, data_root=str(data_root))
        tasks = benchmark.load(config, "cpu")
        assert len(tasks) == 2 and tasks[0].x_train.shape == (100, 784) and len(tasks[0].x_test) == 20
        assert config.hidden_sizes() == benchmark.hidden and config.the_scenario() == benchmark.scenario
