"""Independent reference computations: plain autograd, one sample or one slice at a time."""
import torch


def gradient(model, scalar):
    model.zero_grad(set_to_none=True)
    scalar.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_close(got, expected, rtol=1e-9, atol=1e-12):
    assert got.keys() == expected.keys()
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=rtol, atol=atol, msg=lambda m: f"{n}: {m}")
