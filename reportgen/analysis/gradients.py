"""One forward and one input backward per batch: logits, input gradients, the first conv
layer's output and the Grad-CAM layer's output and gradient.

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
    conv1: np.ndarray | None          # (B, 64, h, w): the first convolution's output
    cam_features: np.ndarray | None   # (B, K, u, v): the Grad-CAM layer's output A
    cam_gradients: np.ndarray | None  # (B, K, u, v): d logit[target] / d A
    # (B, 64, t, t): |conv1| averaged over blocks to t x t (forward_backward's conv1_tile)
    conv1_tiles: np.ndarray | None = None


def forward_backward(net, inputs: np.ndarray, target=None, *, extras: bool = True,
                     conv1_full: bool = True, conv1_tile: int | None = None) -> BatchGradients:
    """Run `inputs` (B, 3, H, W) through `net` once and back once.

    target: None for each example's own top-1, one class index for every example, or a
    (B,) sequence of class indices (SmoothGrad's and IG's copies of an image all explain
    that image's class).
    extras: also return the first conv's output and the Grad-CAM layer's output and
    gradient (the copies of SmoothGrad and IG need only the input gradient).
    conv1_full: with extras, the first conv's output as it is (12.8 MB per VGG image).
    conv1_tile: with extras, also |first conv output| averaged over k x k blocks down to
    conv1_tile x conv1_tile (k = h / conv1_tile; the activation grid's tiles), computed
    by MXNet's pooling on both cores and copied out at 1/k^2 of the size. Where h is not
    a multiple of conv1_tile there are no tiles, and the full output is returned instead
    whatever conv1_full says (the grid then reduces it itself).

    Each example's gradient is independent of the others in the batch: the summed score
    separates, because the forward uses no batch statistics. The graph is recorded in two
    pieces, input -> Grad-CAM layer and Grad-CAM layer -> logits, the second starting from
    a detached copy of the Grad-CAM layer's output: backward through the head gives
    d score / d A, and backward through the body from there gives d score / d input. That
    is one backward through the whole network, as before; MXNet cannot return the
    gradient of a recorded intermediate otherwise (autograd.grad refuses non-leaves).
    """
    x = mx.nd.array(inputs, dtype=inputs.dtype)
    x.attach_grad()
    with autograd.record(train_mode=True):
        conv1 = net.first_conv(x)
        features = net.body(conv1)
        cut = features.detach()
        cut.attach_grad()
        logits = net.head(cut)
        with autograd.pause():
            chosen = _targets(logits, target, inputs.shape[0])
        score = mx.nd.pick(logits, chosen, axis=1).sum()
    score.backward()
    features.backward(cut.grad)
    tiles = _block_means_of_magnitude(conv1, conv1_tile) if extras and conv1_tile else None
    full = extras and (conv1_full or (conv1_tile is not None and tiles is None))
    return BatchGradients(
        logits=logits.asnumpy(),
        targets=chosen.asnumpy().astype(np.int64),
        gradients=x.grad.asnumpy(),
        conv1=conv1.asnumpy() if full else None,
        cam_features=features.asnumpy() if extras else None,
        cam_gradients=cut.grad.asnumpy() if extras else None,
        conv1_tiles=tiles,
    )


def _block_means_of_magnitude(conv1, tile: int) -> np.ndarray | None:
    """|conv1| (B, C, h, w) -> (B, C, tile, tile) means of k x k blocks, k = h / tile;
    None if the output does not divide into such blocks. Outside autograd.record: no
    part of any gradient."""
    h, w = conv1.shape[2:]
    if h != w or h % tile:
        return None
    factor = h // tile
    magnitude = mx.nd.abs(conv1)
    if factor > 1:
        magnitude = mx.nd.Pooling(magnitude, kernel=(factor, factor), stride=(factor, factor),
                                  pool_type="avg")
    return magnitude.asnumpy()


def _targets(logits, target, batch: int):
    if target is None:
        return mx.nd.argmax(logits, axis=1)
    if np.ndim(target) == 0:
        return mx.nd.full((batch,), int(target), dtype=logits.dtype)
    target = np.asarray(target, dtype=np.int64)
    if target.shape != (batch,):
        raise ValueError(f"{target.shape[0]} targets for a batch of {batch}")
    return mx.nd.array(target, dtype=logits.dtype)


def input_gradients(net, inputs: np.ndarray, targets, batch_size: int,
                    on_chunk=None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, 1000) and d logit[target] / d input (N, 3, H, W) for N rows, passed
    through the network `batch_size` rows at a time (the copies of SmoothGrad and IG).
    on_chunk(rows) is called after each chunk (progress)."""
    logits, gradients = [], []
    targets = np.asarray(targets, dtype=np.int64)
    for begin in range(0, len(inputs), batch_size):
        out = forward_backward(net, np.ascontiguousarray(inputs[begin:begin + batch_size]),
                               targets[begin:begin + batch_size], extras=False)
        logits.append(out.logits)
        gradients.append(out.gradients)
        if on_chunk:
            on_chunk(len(out.logits))
    return np.concatenate(logits), np.concatenate(gradients)


def predict(net, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits (N, 1000) of an inference forward alone (no recording), `batch_size` rows at
    a time: for the faithfulness curves, which need no gradient."""
    out = []
    for begin in range(0, len(inputs), batch_size):
        logits, _ = net(mx.nd.array(np.ascontiguousarray(inputs[begin:begin + batch_size]),
                                    dtype=inputs.dtype))
        out.append(logits.asnumpy())
    return np.concatenate(out)


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
