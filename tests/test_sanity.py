"""The cascading randomization test's pieces: which layers each stage re-initializes, that
exactly those change, and the map similarity measures."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_net, seeded_params
from reportgen import attribute, models
from reportgen.mx import nn

STAGES = {
    "vgg19": ["logits (output layer)", "fc6-fc7", "conv block 5", "conv block 4", "conv block 3"],
    "vgg16": ["logits (output layer)", "fc6-fc7", "conv block 5", "conv block 4", "conv block 3"],
    "resnet152": ["logits (output layer)", "stage 4", "stage 3", "stage 2", "stage 1"],
}


@pytest.mark.parametrize("arch", list(STAGES))
def test_stages_from_the_logits_down(arch, params_dir):
    split = models.prepare(load_net(arch, seeded_params(arch, 64, params_dir)), hybridize=False)
    stages = models.randomization_stages(split)
    assert [name for name, _ in stages] == STAGES[arch]
    assert len(stages) == models.SANITY_STAGES
    assert stages[0][1] == [split.head[-1]]
    if arch.startswith("vgg"):
        convs_in_block5 = {"vgg19": 4, "vgg16": 3}[arch]
        assert len(stages[2][1]) == convs_in_block5 and all(isinstance(b, nn.Conv2D) for b in stages[2][1])
        assert [len(b) for _, b in stages[1:2]] == [2]     # fc6, fc7
    # No block in two stages, and the first conv in none.
    seen = [id(b) for _, blocks in stages for b in blocks]
    assert len(seen) == len(set(seen)) and id(split.first_conv) not in seen


def test_randomizing_a_stage_changes_exactly_its_weights(params_dir):
    split = models.prepare(load_net("vgg16", seeded_params("vgg16", 64, params_dir)), hybridize=False)
    before = {name: p.data().asnumpy().copy() for name, p in split.collect_params().items()}
    name, blocks = models.randomization_stages(split)[2]          # conv block 5
    models.randomize_blocks(blocks, np.random.default_rng(0))
    changed = {p.name for b in blocks for p in b.collect_params().values()}
    for pname, p in split.collect_params().items():
        after = p.data().asnumpy()
        if pname in changed and pname.endswith("weight"):
            fan_in = int(np.prod(after.shape[1:]))
            assert not np.array_equal(after, before[pname])
            assert after.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
        elif pname in changed:
            assert (after == 0).all()
        else:
            np.testing.assert_array_equal(after, before[pname])
    assert len(changed) == 6    # three convs: weight and bias each
    # Seeded: the same generator seed writes the same weights.
    first = blocks[0].weight.data().asnumpy().copy()
    models.randomize_blocks(blocks, np.random.default_rng(0))
    np.testing.assert_array_equal(blocks[0].weight.data().asnumpy(), first)


def test_randomized_weights_do_not_depend_on_what_the_process_built_before():
    """The Dask identity test found it: Gluon names parameters with process-wide counters
    (conv98_weight, conv99_weight, conv100_weight), so visiting them in the order of those
    names gave a worker (a fresh process) other random weights than the serial run for
    the same seed once the counters crossed a power of ten."""
    from reportgen.mx import mx

    def counter() -> int:
        return int(nn.Conv2D(2, 3).name[len("conv"):])

    def three_convs():
        block = nn.HybridSequential()
        for _ in range(3):
            block.add(nn.Conv2D(2, 3, in_channels=2))
        block.initialize(mx.init.Zero())
        return block

    while counter() % 100 > 90:         # the first block's names stay within one power of ten
        pass
    first = three_convs()
    while counter() % 100 != 97:        # the next three are conv98, conv99, conv100
        pass
    second = three_convs()
    assert [c.name for c in second._children.values()][-1].endswith("00")
    for block in (first, second):
        models.randomize_blocks([block], np.random.default_rng(5))
    for a, b in zip(first._children.values(), second._children.values()):
        np.testing.assert_array_equal(a.weight.data().asnumpy(), b.weight.data().asnumpy())


def test_map_similarity_measures():
    rng = np.random.default_rng(1)
    a = rng.random((32, 32))
    same = attribute.map_similarity(a, 3 * a + 1)       # same ranks, same map once scaled
    assert same["spearman"] == pytest.approx(1.0) and same["ssim"] == pytest.approx(1.0)
    opposite = attribute.map_similarity(a, -a)
    assert opposite["spearman"] == pytest.approx(-1.0) and opposite["ssim"] < 0
    unrelated = attribute.map_similarity(a, rng.random((32, 32)))
    assert abs(unrelated["spearman"]) < 0.1 and unrelated["ssim"] < 0.2
