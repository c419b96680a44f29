"""One forward and one input backward per batch: logits, input gradients, first-conv output.

The network must come from ``models.prepare`` (inference-exact forward while recording).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mx import autograd, mx


@dataclass(frozen=True)
class BatchGradients:
    logits: np.ndarray     # (B, 1000) in the network's dtype
    targets: np.ndarray    # (B,) int64: the class whose logit was differentiated
    gradients: np.ndarray  # (B, 3, H, W): d logit[target] / d input, per example
    conv1: np.ndarray      # (B, 64, h, w): the first convolution's output (pre-activation)


def forward_backward(net, inputs: np.ndarray, target: int | None = None) -> BatchGradients:
    """Run `inputs` (B, 3, H, W) through `net` once and back once.

    target: a class index used for every example, or None for each example's own top-1.
    Each example's gradient is independent of the others in the batch: the summed score
    separates, because the forward uses no batch statistics.
    """
    x = mx.nd.array(inputs, dtype=inputs.dtype)
    x.attach_grad()
    with autograd.record(train_mode=True):
        logits, conv1 = net(x)
        with autograd.pause():
            if target is None:
                chosen = mx.nd.argmax(logits, axis=1)
            else:
                chosen = mx.nd.full((inputs.shape[0],), target, dtype=logits.dtype)
        score = mx.nd.pick(logits, chosen, axis=1).sum()
    score.backward()
    return BatchGradients(
        logits=logits.asnumpy(),
        targets=chosen.asnumpy().astype(np.int64),
        gradients=x.grad.asnumpy(),
        conv1=conv1.asnumpy(),
    )


def first_conv_output(net, inputs: np.ndarray) -> np.ndarray:
    """The first convolution's output alone, for inputs that need nothing else (the noise
    image): (B, 64, h, w). Running only that layer skips a whole forward and the build of
    a second, inference-mode graph (0.3 s per model)."""
    return net.first_conv(mx.nd.array(inputs, dtype=inputs.dtype)).asnumpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
