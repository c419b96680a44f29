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
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .mx import mx, gluon, nn
from mxnet.gluon.parameter import Parameter
from .errors import UsageError


@dataclass(frozen=True)
class ModelSpec:
    name: str          # what users type: vgg19, vgg16, resnet152
    zoo_name: str      # the Gluon model-zoo name, which also names the weights file
    family: str        # "VGG" or "ResNet": the comparison the report is about
    filter_size: int   # first conv kernel size
    # Hybridize with static memory (static_alloc, static_shape): its first call plans the
    # memory of every node of the graph. Measured per batch of 4 (2 runs, 7 batches each):
    # VGG's steady batches are 3-5 % faster with it and its first costs about the same;
    # resnet152's ~470 nodes make its first call 0.5-0.6 s slower (1.6-1.7 s against
    # 1.1-1.25 s) and its steady batches gain nothing. The gradients are bit-identical.
    static_graph: bool = True


MODEL_SPECS: dict[str, ModelSpec] = {
    "vgg19": ModelSpec("vgg19", "vgg19", "VGG", 3),
    "vgg16": ModelSpec("vgg16", "vgg16", "VGG", 3),
    "resnet152": ModelSpec("resnet152", "resnet152_v1", "ResNet", 7, static_graph=False),
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
    """The zoo network cut in three, so that one forward and one backward give the logits,
    the first conv layer's output and the Grad-CAM layer's output and gradient (Gluon
    forward hooks do not fire inside a hybridized parent):

    - ``first_conv``: ``features[0]``;
    - ``body``: from there to the Grad-CAM layer (``gradcam_layer``): for VGG the ReLU
      after the last convolution, before the final max-pool; for ResNet the output of the
      last stage, before the global average pool;
    - ``head``: the rest, up to the logits.

    Called as a whole (``split(x)``) it is the plain network: (logits, conv1).
    """

    def __init__(self, net: gluon.HybridBlock, **kwargs):
        super().__init__(**kwargs)
        layers = list(net.features._children.values())
        if not isinstance(layers[0], nn.Conv2D):
            raise TypeError(f"{type(net).__name__}: features[0] is not a Conv2D")
        cut = gradcam_cut(net)
        self.gradcam_layer = f"features.{cut - 1}"
        with self.name_scope():
            self.first_conv = layers[0]
            self.body = nn.HybridSequential(prefix="")
            self.body.add(*layers[1:cut])
            self.head = nn.HybridSequential(prefix="")
            self.head.add(*layers[cut:])
            self.head.add(net.output)

    def hybrid_forward(self, F, x):
        conv1 = self.first_conv(x)
        return self.head(self.body(conv1)), conv1


def gradcam_cut(net: gluon.HybridBlock) -> int:
    """Index in ``net.features`` of the first layer after the Grad-CAM layer: VGG's final
    max-pool (the last one: after it come the fully connected layers), ResNet's global
    average pool (after its last stage)."""
    layers = list(net.features._children.values())
    for kind in (nn.GlobalAvgPool2D, nn.MaxPool2D):
        found = [i for i, layer in enumerate(layers) if isinstance(layer, kind)]
        if found:
            return found[-1]
    raise TypeError(f"{type(net).__name__}: no pooling layer to place Grad-CAM before")


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


def fold_batchnorms(net: gluon.HybridBlock) -> int:
    """Fold each BatchNorm that directly follows a Conv2D into that convolution's weights
    and bias; returns how many were folded.

    In inference BatchNorm is the per-channel affine map (x - mean) / sqrt(var + eps) *
    gamma + beta, so conv-then-BN equals one convolution with weights scaled by
    gamma / sqrt(var + eps) and a shifted bias: the same function, hence the same input
    gradient, without 154 BatchNorm forwards and backwards in resnet152 (its floor went
    from 7.8 to 6.8 s across benchmark runs). The network's first conv
    keeps its BatchNorm: the report shows that conv's own output.
    Call after the weights are loaded and after reading anything reported about them.
    """
    first = next(iter(net.features._children.values()))
    folded = 0
    for block in list(_walk(net)):
        if not isinstance(block, nn.HybridSequential):
            continue
        keys = list(block._children)
        for conv_key, bn_key in zip(keys, keys[1:]):
            conv, bn = block._children.get(conv_key), block._children.get(bn_key)
            if (isinstance(conv, nn.Conv2D) and isinstance(bn, nn.BatchNorm)
                    and conv is not first and conv.act is None):
                block._children[conv_key] = _conv_with_bn(conv, bn)
                del block._children[bn_key]
                folded += 1
    return folded


@contextmanager
def loaded_arrays_adopted():
    """Inside: a Gluon Parameter initialized from an array already on its one context (the
    arrays load_parameters has just read from the file) takes that array as its data instead
    of a copy of it. Gluon 1.9 copies every loaded array (Parameter._init_impl:
    data.copyto(ctx)) and then drops the original: for a VGG that is 550 MB of fresh pages
    written once more (about 140,000 page faults), 0.2 s of a 0.45 s load. The loaded
    arrays are referenced by nothing else, so adopting them changes no value (tested
    against Gluon's own load). Anything else (several contexts, another device, a
    WeightSource not read from a file) goes Gluon's way."""
    original = Parameter.__dict__.get("_init_impl")
    if original is None:   # another MXNet than the 1.9 this was written against
        yield
        return

    def init_impl(self, data, ctx_list):
        ctx_list = list(ctx_list)
        if len(ctx_list) != 1 or data.context != ctx_list[0]:
            return original(self, data, ctx_list)
        # Parameter._init_impl of MXNet 1.9, for one context, without data.copyto(ctx).
        ctx = ctx_list[0]
        self._ctx_list = ctx_list
        self._ctx_map = [[], []]
        self._ctx_map[ctx.device_typeid & 1] = [None] * ctx.device_id + [0]
        self._data = [data]
        self._init_grad()

    Parameter._init_impl = init_impl
    try:
        yield
    finally:
        Parameter._init_impl = original


def _conv_with_bn(conv: nn.Conv2D, bn: nn.BatchNorm) -> nn.Conv2D:
    """A new Conv2D (with bias) computing bn(conv(x)) in inference mode."""
    k = conv._kwargs
    weight = conv.weight.data()
    dtype = weight.dtype
    w = weight.asnumpy().astype(np.float64)
    b = conv.bias.data().asnumpy().astype(np.float64) if conv.bias is not None else 0.0
    gamma = (np.ones(w.shape[0]) if bn._kwargs["fix_gamma"]
             else bn.gamma.data().asnumpy().astype(np.float64))
    scale = gamma / np.sqrt(bn.running_var.data().asnumpy().astype(np.float64) + bn._kwargs["eps"])
    shift = bn.beta.data().asnumpy().astype(np.float64) - bn.running_mean.data().asnumpy() * scale
    fused = nn.Conv2D(k["num_filter"], k["kernel"], k["stride"], k["pad"], k["dilate"],
                      k["num_group"], k["layout"], use_bias=True,
                      in_channels=w.shape[1] * k["num_group"])
    fused.collect_params().setattr("grad_req", "null")
    fused.cast(dtype)
    # The folded arrays become the parameters' data, as loaded weights do (no zero-filled
    # arrays first, no copy into them: resnet152 folds its 154 in 2/3 of the time).
    with loaded_arrays_adopted():
        fused.weight._load_init(mx.nd.array(w * scale[:, None, None, None], dtype=dtype), weight.context)
        fused.bias._load_init(mx.nd.array(b * scale + shift, dtype=dtype), weight.context)
    return fused


def prepare(net: gluon.HybridBlock, *, hybridize: bool = True, fold: bool = True,
            static_graph: bool = True) -> SplitNetwork:
    """Set a network with loaded weights up for input-gradient computation.
    static_graph: hybridize with static memory (ModelSpec.static_graph says for which)."""
    if fold:
        fold_batchnorms(net)
    make_inference_exact(net)
    # Only the input needs a gradient: skipping weight gradients halves the backward.
    net.collect_params().setattr("grad_req", "null")
    split = SplitNetwork(net)
    if hybridize:
        # Each part gets its own static graph: they are called one by one (see
        # analysis.gradients.forward_backward); calling the whole uses the same parts.
        for part in (split.first_conv, split.body, split.head):
            part.hybridize(static_alloc=static_graph, static_shape=static_graph)
    return split


def mx_threads() -> str:
    """The OpenMP thread count MXNet was imported with (reportgen.mx sets it first)."""
    return os.environ.get("OMP_NUM_THREADS", "")


SANITY_STAGES = 5   # stages of randomization_stages, for progress estimates


def randomization_stages(split: SplitNetwork) -> list[tuple[str, list[gluon.Block]]]:
    """The stages of the cascading model-parameter randomization test (Adebayo et al. 2018),
    from the logits downward, each a list of blocks whose weights are re-initialized
    together: for VGG the output layer, fc6-fc7, then conv blocks 5, 4 and 3; for ResNet
    the output layer, then stages 4, 3, 2 and 1. The first conv and the blocks before
    stage 1 / conv block 3 are never randomized (five stages per network)."""
    stages: list[tuple[str, list[gluon.Block]]] = [("logits (output layer)", [split.head[-1]])]
    dense = [b for b in list(split.head._children.values())[:-1] if isinstance(b, nn.Dense)]
    if dense:   # VGG: fc6 and fc7 sit in its features, between the last pool and the output
        stages.append(("fc6-fc7", dense))
        blocks, current = [], []
        for layer in [split.first_conv, *split.body._children.values()]:
            if isinstance(layer, nn.Conv2D):
                current.append(layer)
            elif isinstance(layer, nn.MaxPool2D) and current:
                blocks.append(current)
                current = []
        if current:
            blocks.append(current)
        for number in (5, 4, 3):
            stages.append((f"conv block {number}", blocks[number - 1]))
    else:       # ResNet: its four stages
        resnet_stages = [b for b in split.body._children.values() if isinstance(b, nn.HybridSequential)]
        for number in (4, 3, 2, 1):
            stages.append((f"stage {number}", [resnet_stages[number - 1]]))
    return stages


def randomize_blocks(blocks: list[gluon.Block], rng: np.random.Generator) -> None:
    """Re-initialize in place every weight of `blocks` from N(0, 2 / fan_in) (He et al.:
    keeps the activations' scale through ReLUs, so the maps stay non-degenerate) and every
    bias to 0. Folded BatchNorms live in their convolutions' weights and biases and are
    randomized with them. The values are written into the existing arrays, so hybridized
    graphs use them at once.

    Parameters are visited in the order of their structural names (``0.body.3.weight``):
    Gluon's own names carry process-wide counters (``resnetv13_conv57_weight``, and the
    folded convolutions' new ones), so their order, and which draw each weight got,
    changed with what else the process had built."""
    for block in blocks:
        for name, param in sorted(block._collect_params_with_prefix().items()):
            shape = param.shape
            if name.endswith("weight"):
                fan_in = int(np.prod(shape[1:]))
                values = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif name.endswith("bias"):
                values = np.zeros(shape)
            else:
                continue
            param.set_data(mx.nd.array(values, dtype=param.data().dtype, ctx=param.data().context))
