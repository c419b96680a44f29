"""The input gradient is the true gradient of each real architecture in inference mode.

Seeded weights stand in for the pretrained ones (same layers, same code path). References:
float64 central differences, the unmodified network's own inference forward, and the
property that a batch gives the same gradients as its images one by one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import load_net, seeded_params
from reportgen import models
from reportgen.analysis.compare import spearman
from reportgen.analysis.gradients import first_conv_output, forward_backward
from reportgen.analysis.saliency import saliency_maps
from reportgen.mx import autograd, mx

ARCHITECTURES = ["vgg19", "vgg16", "resnet152"]
SMALL = 64   # float64 runs without oneDNN and is slow: finite differences at 64 x 64


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def random_inputs(n: int, size: int, seed: int, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(dtype)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request):
    return request.param


@pytest.mark.slow
def test_gradient_matches_float64_central_differences(arch, params_dir):
    """<gradient, d> equals (f(x + h d) - f(x - h d)) / 2h along random unit directions.
    The network is piecewise linear, so a step can cross a kink: of three step sizes the
    best must agree to 1e-5 relative."""
    split = models.prepare(load_net(arch, seeded_params(arch, SMALL, params_dir), "float64"))
    x = random_inputs(2, SMALL, seed=1, dtype=np.float64)
    target = 5
    out = forward_backward(split, x, target)
    assert out.gradients.dtype == np.float64

    def score(inputs):
        logits, _ = split(mx.nd.array(inputs, dtype="float64"))
        return float(logits.asnumpy()[:, target].sum())

    rng = np.random.default_rng(2)
    for _ in range(3):
        direction = rng.standard_normal(x.shape)
        direction /= np.linalg.norm(direction)
        analytic = float((out.gradients * direction).sum())
        errors = []
        for h in (1e-4, 1e-5, 1e-6):
            numeric = (score(x + h * direction) - score(x - h * direction)) / (2 * h)
            errors.append(abs(numeric - analytic) / abs(analytic))
        assert min(errors) < 1e-5, (arch, errors)


@pytest.mark.slow
def test_float32_fast_path_matches_float64_reference(arch, params_dir):
    """The production path (float32, oneDNN, 224 x 224) against the float64 gradient, whose
    method the finite differences check. Every layer's backward alone agrees to 3e-7; the
    chain differs where float32 rounding puts a ReLU or a max-pool on the other side of a
    kink, which spreads over a deep unit's receptive field (measured on these seeds: 1.5e-2
    on vgg16, 4e-3 with oneDNN off, whose forward rounds 3x less). The known-wrong paths
    are off by 0.9 or more, and the saliency maps must rank pixels alike."""
    params = seeded_params(arch, 224, params_dir)
    x = random_inputs(1, 224, seed=3)
    reference = forward_backward(models.prepare(load_net(arch, params, "float64")),
                                 x.astype(np.float64), 7).gradients
    fast = forward_backward(models.prepare(load_net(arch, params)), x, 7).gradients
    assert fast.dtype == np.float32
    assert relative_error(fast.astype(np.float64), reference) < 5e-2
    assert spearman(saliency_maps(fast)[0], saliency_maps(reference)[0]) > 0.999


def naive_gradient(net, x: np.ndarray, target: int, train_mode: bool) -> np.ndarray:
    """What the notebook did (train_mode=True) and the obvious fix (train_mode=False),
    on the unmodified zoo network."""
    net.hybridize()
    inputs = mx.nd.array(x)
    inputs.attach_grad()
    with autograd.record(train_mode=train_mode):
        score = mx.nd.pick(net(inputs), mx.nd.full((x.shape[0],), target), axis=1).sum()
    score.backward()
    return inputs.grad.asnumpy()


@pytest.mark.slow
@pytest.mark.parametrize("train_mode", [True, False])
def test_the_reference_rejects_the_known_wrong_paths(train_mode, params_dir):
    """The same float64 reference tells the naive recipes apart: it would catch a
    regression to either (mxnet-notes.md: Dropout/batch statistics, oneDNN pooling)."""
    params = seeded_params("vgg16", SMALL, params_dir)
    x = random_inputs(2, SMALL, seed=3)
    reference = forward_backward(models.prepare(load_net("vgg16", params, "float64")),
                                 x.astype(np.float64), 7).gradients
    wrong = naive_gradient(load_net("vgg16", params), x, 7, train_mode)
    assert not np.isfinite(wrong).all() or relative_error(wrong.astype(np.float64), reference) > 0.1


@pytest.mark.slow
def test_recorded_forward_is_the_inference_forward(arch, params_dir):
    """Logits and first-conv output under recording equal the unmodified network's
    inference forward (Dropout off, BatchNorm on running statistics)."""
    params = seeded_params(arch, 224, params_dir)
    x = random_inputs(2, 224, seed=4)
    reference_net = load_net(arch, params)
    expected = reference_net(mx.nd.array(x)).asnumpy()
    expected_conv1 = reference_net.features[0](mx.nd.array(x)).asnumpy()
    out = forward_backward(models.prepare(load_net(arch, params)), x, None)
    np.testing.assert_allclose(out.logits, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(out.conv1, expected_conv1, rtol=1e-5, atol=1e-6)
    assert out.conv1.shape[1] == 64
    split = models.prepare(load_net(arch, params))
    np.testing.assert_allclose(first_conv_output(split, x), expected_conv1, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.targets, expected.argmax(axis=1))


def test_first_conv_tiles_are_block_means_of_its_magnitude(arch, params_dir):
    """conv1_tiles (MXNet's average pooling of |conv1|) equals the activation grid's own
    reduction of the full output, computed in numpy; the gradient is unchanged by it;
    conv1_full=False leaves the full output out."""
    from reportgen.render.images import TILE, _block_mean

    split = models.prepare(load_net(arch, seeded_params(arch, 224, params_dir)))
    x = random_inputs(2, 224, seed=6)
    full = forward_backward(split, x, 3)
    tiled = forward_backward(split, x, 3, conv1_full=False, conv1_tile=TILE)
    assert tiled.conv1 is None and full.conv1_tiles is None
    factor = full.conv1.shape[-1] // TILE
    assert factor == (4 if arch.startswith("vgg") else 2)
    expected = np.stack([_block_mean(np.abs(c), factor) for c in full.conv1])
    assert tiled.conv1_tiles.shape == (2, 64, TILE, TILE)
    np.testing.assert_allclose(tiled.conv1_tiles, expected, rtol=1e-5, atol=1e-6 * expected.max())
    np.testing.assert_array_equal(tiled.gradients, full.gradients)
    # A size that does not divide into tiles: no tiles, the grid reduces the full output.
    from reportgen.analysis.gradients import _block_means_of_magnitude
    assert _block_means_of_magnitude(mx.nd.ones((1, 64, 200, 200)), TILE) is None
    if arch == "resnet152":     # takes any input size (global pooling): conv1 100 x 100
        odd = forward_backward(split, x[:1, :, :200, :200], 3, conv1_full=False, conv1_tile=TILE)
        assert odd.conv1_tiles is None and odd.conv1.shape == (1, 64, 100, 100)


@pytest.mark.slow
def test_gradients_are_deterministic_and_batch_independent(arch, params_dir):
    """Run to run identical; a batch of three equals the three images one by one (up to
    float32 rounding: oneDNN picks other kernels for other batch sizes; measured 5e-4,
    while each is within 1.7e-3 of the float64 gradient)."""
    split = models.prepare(load_net(arch, seeded_params(arch, 224, params_dir)))
    x = random_inputs(3, 224, seed=5)
    first = forward_backward(split, x, 3)
    again = forward_backward(split, x, 3)
    np.testing.assert_array_equal(first.gradients, again.gradients)
    singles = np.concatenate([forward_backward(split, x[i:i + 1], 3).gradients for i in range(3)])
    for i in range(3):
        assert relative_error(first.gradients[i], singles[i]) < 3e-3
    assert np.abs(first.gradients).max() > 0
    np.testing.assert_array_equal(first.targets, [3, 3, 3])


def test_folding_batchnorms_keeps_the_function_and_its_gradient(params_dir):
    """resnet152 with its BatchNorms folded into the convolutions (random, non-trivial BN
    statistics) computes the same logits and the same input gradient as with them, in
    float64 where rounding cannot hide a mistake; the first conv keeps its BatchNorm."""
    params = seeded_params("resnet152", SMALL, params_dir)
    x = random_inputs(2, SMALL, seed=8, dtype=np.float64)
    plain = forward_backward(models.prepare(load_net("resnet152", params, "float64"), fold=False), x, 5)
    net = load_net("resnet152", params, "float64")
    batchnorms = lambda: [b for b in models._walk(net) if isinstance(b, mx.gluon.nn.BatchNorm)]
    assert len(batchnorms()) == 155
    assert models.fold_batchnorms(net) == 154
    assert len(batchnorms()) == 1 and net.features[1] is batchnorms()[0]
    folded = forward_backward(models.prepare(net, fold=False), x, 5)
    np.testing.assert_allclose(folded.logits, plain.logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(folded.conv1, plain.conv1, rtol=1e-12, atol=0)
    assert relative_error(folded.gradients, plain.gradients) < 1e-10
    assert folded.gradients.dtype == np.float64


def test_no_weight_gradients_are_kept(params_dir):
    """Only the input gets a gradient: weight gradients would double the backward's cost."""
    net = load_net("vgg16", seeded_params("vgg16", SMALL, params_dir))
    models.prepare(net)
    assert {p.grad_req for p in net.collect_params().values()} == {"null"}


def test_make_inference_exact_switches_every_layer():
    net = models.build_network(models.model_spec("resnet152"))
    models.make_inference_exact(net)
    batchnorms = [b for b in models._walk(net) if isinstance(b, mx.gluon.nn.BatchNorm)]
    assert batchnorms and all(b._kwargs["use_global_stats"] for b in batchnorms)
    vgg = models.build_network(models.model_spec("vgg19"))
    models.make_inference_exact(vgg)
    dropouts = [b for b in models._walk(vgg) if isinstance(b, mx.gluon.nn.Dropout)]
    assert len(dropouts) == 2 and all(b._rate == 0 for b in dropouts)


def test_conv_layers_lists_every_convolution_in_order():
    counts = {name: len(models.conv_layers(models.build_network(models.model_spec(name))))
              for name in ARCHITECTURES}
    assert counts == {"vgg19": 16, "vgg16": 13, "resnet152": 155}
    first_name, first = models.conv_layers(models.build_network(models.model_spec("resnet152")))[0]
    assert first_name == "features.0" and first.weight.shape[-2:] == (7, 7)


@pytest.mark.slow
def test_graphs_with_and_without_static_memory_give_identical_gradients(arch, params_dir):
    """The run hybridizes each model as its ModelSpec.static_graph says (resnet152 without
    static memory, for speed): the other setting gives bit-identical outputs, so the choice
    is only about time. Every other gradient test uses the default, static memory."""
    params = seeded_params(arch, 224, params_dir)
    x = random_inputs(2, 224, seed=8)
    outputs = [forward_backward(models.prepare(load_net(arch, params), static_graph=static), x, None)
               for static in (True, False)]
    for name in ("gradients", "logits", "conv1"):
        np.testing.assert_array_equal(getattr(outputs[0], name), getattr(outputs[1], name), err_msg=name)
    assert models.model_spec("resnet152").static_graph is False


# In a fresh process: where a 64 MB block lands, in malloc's heap (below the program
# break) or in a mapping of its own (above it).
BLOCK_IN_THE_HEAP = """
import ctypes
import numpy as np
import reportgen.mx
block = np.ones(8 << 20)
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
print(block.ctypes.data < libc.sbrk(0))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_large_blocks_come_from_mallocs_heap_so_that_freed_memory_is_reused():
    """Importing MXNet through reportgen.mx has malloc serve large blocks (a model's
    weights) from its heap, where the next model reuses them, instead of fresh mappings
    whose pages fault in one by one. REPORTGEN_MALLOC=system and a user's own
    MALLOC_MMAP_MAX_ (or a Dask nanny's MALLOC_TRIM_THRESHOLD_) leave malloc as it is;
    REPORTGEN_MALLOC=heap, which `--workers` sets, applies it all the same."""
    # Without what the test process may have picked up (a Dask nanny started by an earlier
    # test puts its MALLOC_TRIM_THRESHOLD_ into its parent's environment).
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "REPORTGEN_MALLOC"))}

    def in_heap(**env):
        done = subprocess.run([sys.executable, "-c", BLOCK_IN_THE_HEAP], check=True,
                              capture_output=True, text=True, env={**clean, **env})
        return done.stdout.split()[-1]

    assert in_heap() == "True"
    assert in_heap(MALLOC_MMAP_MAX_="65536") == "False"
    assert in_heap(REPORTGEN_MALLOC="system") == "False"
    assert in_heap(MALLOC_TRIM_THRESHOLD_="65536") == "False"
    assert in_heap(MALLOC_TRIM_THRESHOLD_="65536", REPORTGEN_MALLOC="heap") == "True"
