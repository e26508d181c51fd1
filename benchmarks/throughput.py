"""Training throughput: HW14's input pipeline against cl_course's, same model, batch and data.

HW14: torchvision MNIST with per-sample transforms (ToTensor, Normalize, the pixel permutation)
through a DataLoader. cl_course: the same images normalised once into one tensor, batches by index.
Both train the HW14 MLP with Adam for the same number of samples, in one run, on one device.

    python benchmarks/throughput.py --data-root ../shared/data [--samples 24680] [--device cpu]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from cl_course.data import load_mnist, normalise, pixel_permutations
from cl_course.model import MLP
from cl_course.train import select_device


def hw14_batches(root, perm, n, batch_size):
    """As the homework: a Dataset whose __getitem__ builds a PIL image and transforms it, sample by sample."""
    perm = torch.as_tensor(perm)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,)),
                                    transforms.Lambda(lambda x: x.view(-1)[perm])])
    ds = datasets.MNIST(root=str(root), train=True, download=True, transform=transform)
    ds = torch.utils.data.Subset(ds, range(n))
    return DataLoader(ds, batch_size=batch_size, shuffle=True)


def our_batches(x, y, batch_size, generator):
    for idx in torch.randperm(len(x), generator=generator).to(x.device).split(batch_size):
        yield x[idx], y[idx]


def train_epoch(batches, model, optimizer, device):
    start, seen = time.perf_counter(), 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    loss.item()  # CPU-GPU sync point before stopping the clock
    return seen / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="epochs per pipeline, alternating; the best counts")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = select_device(args.device)
    (xtr, ytr), _ = load_mnist(args.data_root)
    n = min(args.samples or len(xtr), len(xtr))
    perm = pixel_permutations(2)[1]
    x = normalise(xtr[:n])[:, torch.as_tensor(perm)].to(device)
    y = ytr[:n].to(device)
    torch.manual_seed(0)
    model = MLP().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    loader = hw14_batches(args.data_root or "data", perm, n, args.batch_size)
    # the same tensors either way: check once that the homework's pipeline yields our values
    x0, _ = loader.dataset[0]
    assert torch.allclose(x0.to(device), x[0], atol=1e-6), "the two pipelines disagree"
    rates = {"hw14": [], "cl_course": []}
    for _ in range(args.repeats):
        rates["hw14"].append(train_epoch(loader, model, optimizer, device))
        rates["cl_course"].append(train_epoch(our_batches(x, y, args.batch_size, g), model, optimizer, device))
    best = {k: max(v) for k, v in rates.items()}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {n} samples, "
          f"batch {args.batch_size}, best of {args.repeats} epochs each")
    for k, v in best.items():
        print(f"{k:10s} {v:9.0f} samples/s   (epochs: {', '.join(f'{r:.0f}' for r in rates[k])})")
    print(f"ratio cl_course / hw14: {best['cl_course'] / best['hw14']:.2f}x")


if __name__ == "__main__":
    main()
