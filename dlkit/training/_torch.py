"""PyTorch implementation of the ``dlkit.training`` interface (autograd)."""

import keras
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


def alternating_train_step(model, data):
    for update, optimizer, tracker in model._resolved_updates():
        variables = list(update.variables)
        for _ in range(update.repetitions):
            loss = model._checked_loss(update, data)
            # Only the paths to this update's variables are differentiated: in a GAN's
            # discriminator turn, autograd skips the backward pass through the generator (what
            # `.detach()` does in a hand-written loop).
            gradients = torch.autograd.grad(
                loss, [variable.value for variable in variables], allow_unused=True
            )  # None for a variable the loss does not reach, as `.grad` would be
            with torch.no_grad():
                optimizer.apply(gradients, variables)
            tracker.update_state(loss.detach())
    model.optimizer.iterations.assign_add(1)
    return model.get_metrics_result()


def alternating_test_step(model, data):
    with torch.no_grad():
        for update, _, tracker in model._resolved_updates():
            tracker.update_state(model._checked_loss(update, data))
    return model.get_metrics_result()


def inference_function(model, compiled):
    # Nothing is traced on PyTorch. `forward` skips Layer.__call__'s per-call bookkeeping
    # (about a quarter of the latency).
    kwargs = {"training": compiled.training} if model._call_has_training_arg else {}

    def call(inputs):
        with torch.inference_mode():
            outputs = model.forward(torch.as_tensor(inputs), **kwargs)
        return keras.tree.map_structure(lambda x: x.cpu().numpy(), outputs)

    return call


def train_steps_function(model, compiled):
    del compiled  # nothing is traced

    def call(x, y):
        x = torch.as_tensor(x)
        y = keras.tree.map_structure(torch.as_tensor, y)
        for index in range(len(x)):
            step_y = keras.tree.map_structure(lambda leaf, i=index: leaf[i], y)
            logs = model.train_step((x[index], step_y))
        return logs

    return call
