"""PyTorch implementation of the ``dlkit.training`` interface (autograd)."""

import torch


def value_and_grad(fn, variables, inputs, state_variables):
    del state_variables  # PyTorch updates variables in place.
    inputs = [tensor.detach().clone().requires_grad_(True) for tensor in inputs]
    value = fn(*inputs)
    targets = [v.value for v in variables] + inputs
    gradients = torch.autograd.grad(value, targets, allow_unused=True)
    gradients = [
        torch.zeros_like(target) if gradient is None else gradient
        for target, gradient in zip(targets, gradients)
    ]
    return value.detach(), gradients[: len(variables)], gradients[len(variables) :]


def list_devices():
    devices = ["cpu:0"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices
