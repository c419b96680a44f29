"""The three Gluon model-zoo networks, set up so that input gradients are the true
gradients of the network in inference mode.

Why this setup (measured on MXNet 1.9.1, see ../shared/mxnet-notes.md):
- ``autograd.record()`` (training mode) turns Dropout on and makes BatchNorm use the
  batch's own statistics: not the model's gradient.
- ``autograd.record(train_mode=False)`` gives NaN through BatchNorm, and wrong,
  run-to-run varying gradients through oneDNN's max-pooling backward.
- Recording in training mode with every BatchNorm on its running statistics and every
  Dropout disabled makes the recorded forward exactly the inference forward, and keeps
  oneDNN's pooling backward correct. That is what ``make_inference_exact`` does.

Only this module and ``analysis.gradients`` import mxnet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .mx import mx, gluon, nn
from .errors import UsageError


@dataclass(frozen=True)
class ModelSpec:
    name: str          # what users type: vgg19, vgg16, resnet152
    zoo_name: str      # the Gluon model-zoo name, which also names the weights file
    family: str        # "VGG" or "ResNet": the comparison the report is about
    filter_size: int   # first conv kernel size


MODEL_SPECS: dict[str, ModelSpec] = {
    "vgg19": ModelSpec("vgg19", "vgg19", "VGG", 3),
    "vgg16": ModelSpec("vgg16", "vgg16", "VGG", 3),
    "resnet152": ModelSpec("resnet152", "resnet152_v1", "ResNet", 7),
}
DEFAULT_MODELS = ("vgg19", "vgg16", "resnet152")


def model_spec(name: str) -> ModelSpec:
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UsageError(
            f"unknown model {name!r}",
            hint=f"choose from {', '.join(MODEL_SPECS)}",
        ) from None


def build_network(spec: ModelSpec) -> gluon.HybridBlock:
    """The zoo architecture with uninitialized parameters (weights are loaded by the caller)."""
    return gluon.model_zoo.vision.get_model(spec.zoo_name, pretrained=False)


def make_inference_exact(net: gluon.Block) -> None:
    """Make a training-mode forward compute exactly the inference forward.

    Gluon's zoo constructors expose neither switch, so we set them on each layer before the
    network is hybridized (the flags are read when the graph is built). MXNet 1.9.1 is the
    final release, so these attributes will not move under us; tests pin the behaviour.
    """
    for block in _walk(net):
        if isinstance(block, nn.BatchNorm):
            block._kwargs["use_global_stats"] = True
        elif isinstance(block, nn.Dropout):
            block._rate = 0.0


def _walk(block: gluon.Block):
    yield block
    for child in block._children.values():
        yield from _walk(child)


class SplitNetwork(gluon.HybridBlock):
    """The zoo network cut after its first convolution, so one forward pass yields both the
    logits and the first conv layer's output (Gluon forward hooks do not fire inside a
    hybridized parent)."""

    def __init__(self, net: gluon.HybridBlock, **kwargs):
        super().__init__(**kwargs)
        layers = list(net.features._children.values())
        if not isinstance(layers[0], nn.Conv2D):
            raise TypeError(f"{type(net).__name__}: features[0] is not a Conv2D")
        with self.name_scope():
            self.first_conv = layers[0]
            self.rest = nn.HybridSequential(prefix="")
            self.rest.add(*layers[1:])
            self.rest.add(net.output)

    def hybrid_forward(self, F, x):
        conv1 = self.first_conv(x)
        return self.rest(conv1), conv1


def conv_layers(net: gluon.Block) -> list[tuple[str, nn.Conv2D]]:
    """Every Conv2D of the network in forward order, named by its structural path
    (the names used in .params files, e.g. ``features.0``)."""
    found = []

    def visit(block, path):
        if isinstance(block, nn.Conv2D):
            found.append((path, block))
        for key, child in block._children.items():
            visit(child, f"{path}.{key}" if path else key)

    visit(net, "")
    return found


def prepare(net: gluon.HybridBlock, *, hybridize: bool = True) -> SplitNetwork:
    """Set a network with loaded weights up for input-gradient computation."""
    make_inference_exact(net)
    # Only the input needs a gradient: skipping weight gradients halves the backward.
    net.collect_params().setattr("grad_req", "null")
    split = SplitNetwork(net)
    if hybridize:
        split.hybridize(static_alloc=True, static_shape=True)
    return split


def mx_threads() -> str:
    """The OpenMP thread count MXNet was imported with (reportgen.mx sets it first)."""
    return os.environ.get("OMP_NUM_THREADS", "")
