"""Shared fixtures: seeded real architectures (no pretrained weights exist on this machine)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
# The report's language follows the locale: the suite's runs are English wherever it runs
# (tests of other languages ask for them with --lang).
os.environ["LC_ALL"] = "C.UTF-8"
# The suite (and the runs it starts) must not read or fill the user's digest cache.
os.environ["REPORTGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="reportgen-test-cache-")

REPO = Path(__file__).resolve().parents[1]


def seeded_params(name: str, size: int, folder: Path, seed: int = 7) -> Path:
    """A .params file of the real zoo architecture `name`, Xavier-initialized with `seed`,
    its shapes materialized for `size` x `size` inputs."""
    from reportgen import models
    from reportgen.mx import mx

    path = folder / f"{name}-{size}-{seed}.params"
    if not path.exists():
        net = models.build_network(models.model_spec(name))
        mx.random.seed(seed)
        net.initialize(mx.init.Xavier())
        net(mx.nd.zeros((1, 3, size, size)))
        randomize_batchnorm_statistics(net, seed)
        net.save_parameters(str(path))
    return path


def randomize_batchnorm_statistics(net, seed: int) -> None:
    """Fresh BatchNorms are the identity (mean 0, var 1, gamma 1, beta 0), which would let a
    mistake in how their statistics are used (or folded into the convolutions) pass
    unnoticed; trained ones are not. Give each its own plausible statistics."""
    import numpy as np

    from reportgen.mx import mx, nn

    rng = np.random.default_rng(seed)
    for block in _walk(net):
        if isinstance(block, nn.BatchNorm):
            n = block.gamma.shape[0]
            for param, values in ((block.gamma, rng.uniform(0.5, 1.5, n)),
                                  (block.beta, rng.normal(0, 0.2, n)),
                                  (block.running_mean, rng.normal(0, 0.2, n)),
                                  (block.running_var, rng.uniform(0.5, 2.0, n))):
                param.set_data(mx.nd.array(values, dtype=param.dtype))


def _walk(block):
    yield block
    for child in block._children.values():
        yield from _walk(child)


def load_net(name: str, params: Path, dtype: str = "float32"):
    """The zoo network of `name` with the weights in `params`, cast to `dtype`."""
    from reportgen import models

    net = models.build_network(models.model_spec(name))
    net.load_parameters(str(params))
    if dtype != "float32":
        net.cast(dtype)
    return net


@pytest.fixture(scope="session")
def params_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("params")
