"""Split / merge / reduce (Fig. 3), Eq. 2 and Eq. 3, and the per-stage cost helper.

Property-based: random weights, inputs of odd and even sizes, 1D and 2D, one or more channels.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfcn.lessons.equivalence import (
    EQ2_LINES,
    EQ3_LINES,
    backbone_subsampling_error,
    backbone_subsampling_errors,
    eq2_lines,
    eq3_lines,
    max_abs_errors,
    random_weights,
)
from fastfcn.lessons.stages import STAGES, format_table, stage_costs, stage_ratios, stage_table
from fastfcn.models.resnet import build_resnet
from fastfcn.ops import conv_same, merge, reduce, split
from fastfcn.utils.threads import limited_threads
from fastfcn.utils.timing import median_seconds

ATOL = 1e-5
FAST = settings(max_examples=25, deadline=None)


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: thread synchronisation costs more than the arithmetic
    with limited_threads(1):
        yield


@st.composite
def inputs(draw, min_size: int = 1, max_size: int = 13):
    """(x, generator): a random (N, C, L) or (N, C, H, W) tensor with odd or even sizes."""
    dims = draw(st.sampled_from([1, 2]))
    sizes = tuple(draw(st.integers(min_size, max_size)) for _ in range(dims))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return torch.randn((n, c) + sizes, generator=gen), gen


def kernel(gen: torch.Generator, channels: int, dims: int, k: int = 3, out: int | None = None) -> torch.Tensor:
    return torch.randn((out or channels, channels) + (k,) * dims, generator=gen)


# -- the operators ---------------------------------------------------------------------------

@FAST
@given(inputs(), st.integers(1, 3))
def test_merge_inverts_split(data, rate):
    x, _ = data
    groups = split(x, rate)
    assert len(groups) == rate ** (x.dim() - 2)
    assert torch.equal(merge(groups, rate), x)
    assert sum(g.numel() for g in groups) == x.numel()


@FAST
@given(inputs(), st.integers(1, 3))
def test_reduce_is_first_group(data, rate):
    x, _ = data
    assert torch.equal(reduce(x, rate), split(x, rate)[0])
    assert reduce(x, rate).shape[-1] == math.ceil(x.shape[-1] / rate)


@FAST
@given(inputs(min_size=3), st.integers(2, 3), st.sampled_from([1, 3, 5]))  # no empty group
def test_dilated_conv_is_split_conv_merge(data, rate, k):
    x, gen = data
    dims, c = x.dim() - 2, x.shape[1]
    w = kernel(gen, c, dims, k, out=c + 1)  # also a change of channel count
    direct = conv_same(x, w, dilation=rate)
    via_groups = merge([conv_same(g, w) for g in split(x, rate)], rate)
    assert direct.shape == (x.shape[0], c + 1) + x.shape[2:]
    torch.testing.assert_close(via_groups, direct, atol=ATOL, rtol=1e-5)


@FAST
@given(inputs(), st.integers(2, 3), st.sampled_from([1, 3, 5]))
def test_stride_conv_is_conv_then_reduce(data, rate, k):
    x, gen = data
    w = kernel(gen, x.shape[1], x.dim() - 2, k)
    torch.testing.assert_close(reduce(conv_same(x, w), rate), conv_same(x, w, stride=rate), atol=ATOL, rtol=1e-5)


def test_against_torch_layers():
    """The same equalities with nn.Conv1d/Conv2d modules (bias included) instead of raw weights."""
    torch.manual_seed(0)
    for conv_cls, size in [(torch.nn.Conv1d, (11,)), (torch.nn.Conv2d, (9, 10))]:
        x = torch.randn((2, 3) + size)
        dil = conv_cls(3, 5, 3, padding=2, dilation=2)
        reg = conv_cls(3, 5, 3, padding=1)
        reg.load_state_dict(dil.state_dict())
        strided = conv_cls(3, 5, 3, padding=1, stride=2)
        strided.load_state_dict(dil.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(merge([reg(g) for g in split(x)]), dil(x))
            torch.testing.assert_close(reduce(reg(x)), strided(x))


# -- Eq. 2 and Eq. 3 ------------------------------------------------------------------------

POINTWISE = {"none": None, "relu": torch.relu, "tanh": torch.tanh,
             "affine": lambda t: 0.7 * t - 0.2}  # an eval-mode BatchNorm is a per-channel affine map


@FAST
@given(inputs(min_size=2), st.integers(1, 3), st.sampled_from(sorted(POINTWISE)))
def test_every_line_of_eq2_and_eq3(data, n, act_name):
    x, gen = data
    w = random_weights(n, x.shape[1], 3, x.dim() - 2, gen)
    act = POINTWISE[act_name]
    lines2, lines3 = eq2_lines(x, w, act=act), eq3_lines(x, w, act=act)
    assert len(lines2) == len(EQ2_LINES) and len(lines3) == len(EQ3_LINES)
    assert max(max_abs_errors(lines2)) < ATOL
    assert max(max_abs_errors(lines3)) < ATOL
    # y_d and y_s come from the same C_r^n: y_s is exactly the first group of y_d
    torch.testing.assert_close(lines3[0], reduce(lines2[0]), atol=ATOL, rtol=1e-5)
    assert lines2[0].shape == x.shape and lines3[0].shape == reduce(x).shape


def test_train_mode_batchnorm_breaks_the_equality():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 20, generator=gen)
    w = random_weights(2, 3, 3, 1, gen)

    def bn_train(t: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(t, None, None, training=True)

    y_d, y_s = eq2_lines(x, w, act=bn_train)[0], eq3_lines(x, w, act=bn_train)[0]
    assert (y_s - reduce(y_d)).abs().max() > 1e-2


def test_whole_backbone_plain_is_subsampled_dilated():
    cases = [(40, False), (40, True), (40, False)]  # C3 is 5x5: odd feature sizes
    eval_bn, train_bn, eval_again = backbone_subsampling_errors("resnet18", cases, seed=1)
    assert set(eval_bn) == {"c2", "c3", "c4", "c5"}
    assert max(eval_bn.values()) < 1e-5, eval_bn
    assert max(train_bn["c4"], train_bn["c5"]) > 1e-2, train_bn
    # the train-mode pass moved the two trunks' running statistics apart: the next case must not see it
    assert max(eval_again.values()) < 1e-5, eval_again
    assert backbone_subsampling_error("resnet18", 40, seed=1) == eval_bn


# -- bad input ------------------------------------------------------------------------------

def test_bad_input_is_rejected_with_a_clear_message():
    x1, x2 = torch.randn(1, 2, 9), torch.randn(1, 2, 6, 7)
    with pytest.raises(ValueError, match=r"\(N, C, L\) for 1D or \(N, C, H, W\) for 2D"):
        split(torch.randn(9))
    with pytest.raises(ValueError, match="got shape"):
        reduce(torch.randn(1, 1, 2, 3, 4))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        split([1.0, 2.0, 3.0])
    for rate in (0, -1, 1.5):
        with pytest.raises(ValueError, match="rate must be a positive integer"):
            split(x1, rate)
        with pytest.raises(ValueError, match="rate must be a positive integer"):
            reduce(x2, rate)
    with pytest.raises(ValueError, match="needs 2 groups, got 3"):
        merge(split(x1) + [split(x1)[0]])
    with pytest.raises(ValueError, match="needs 4 groups, got 2"):
        merge(split(x2)[:2])
    with pytest.raises(ValueError, match="at least one group"):
        merge([])
    with pytest.raises(ValueError, match="cannot produce"):
        merge([torch.randn(1, 2, 3), torch.randn(1, 2, 5)])
    with pytest.raises(ValueError, match="batch/channel shape"):
        merge([torch.randn(1, 2, 3), torch.randn(1, 3, 3)])
    with pytest.raises(ValueError, match="odd kernel"):
        conv_same(x1, torch.randn(2, 2, 4))
    with pytest.raises(ValueError, match="odd kernel_size"):
        random_weights(1, 2, kernel_size=2)


# -- per-stage costs ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_costs():
    with limited_threads(1):
        return {os_: stage_costs(build_resnet("resnet18", os_), 64, time_stages=False) for os_ in (32, 8)}


def test_stage_costs_shapes_and_keys(resnet18_costs):
    for os_, costs in resnet18_costs.items():
        assert tuple(costs) == STAGES
        assert [c.blocks for c in costs.values()] == [1, 2, 2, 2, 2]
        assert costs["layer4"].output_shape == (1, 512, 64 // os_, 64 // os_)
        assert costs["layer2"].output_shape == (1, 128, 8, 8)
        assert costs["layer4"].stride == os_
        for c in costs.values():
            assert c.seconds is None
            assert len(c.block_flops) == len(c.block_activation_bytes) == c.blocks
            assert sum(c.block_flops) == c.flops > 0
            assert c.activation_bytes >= c.output_bytes > 0


def test_dilation_costs_only_in_layer3_and_layer4(resnet18_costs):
    plain, dilated = resnet18_costs[32], resnet18_costs[8]
    for s in ("stem", "layer1", "layer2"):
        assert dilated[s].flops == plain[s].flops
        assert dilated[s].activation_bytes == plain[s].activation_bytes
    for s in ("layer3", "layer4"):
        assert dilated[s].flops > plain[s].flops
        assert dilated[s].activation_bytes > plain[s].activation_bytes
    ratios = stage_ratios(dilated, plain)
    # basic blocks: every convolution of layer3 / layer4 runs on 4x / 16x the positions
    assert ratios["layer3"]["flops"] == pytest.approx(4) and ratios["layer4"]["flops"] == pytest.approx(16)
    assert ratios["layer3"]["pixels"] == 4 and ratios["layer4"]["pixels"] == 16
    assert math.isnan(ratios["total"]["seconds"])
    assert 1 < ratios["total"]["flops"] < 16


def test_stage_flops_add_up_to_the_whole_trunk(resnet18_costs):
    from fastfcn.complexity import complexity

    for os_, costs in resnet18_costs.items():
        assert sum(c.flops for c in costs.values()) == complexity(build_resnet("resnet18", os_), 64).flops


def test_stage_timing_and_tables():
    costs = stage_costs(build_resnet("resnet18", 32), 32, runs=1, warmup=0)
    assert all(c.seconds is not None and c.seconds > 0 for c in costs.values())
    rows = stage_table(costs)
    assert [r["stage"] for r in rows] == [*STAGES, "total"]
    text = format_table(rows)
    assert all(key in text.splitlines()[0] for key in rows[0])
    assert len(text.splitlines()) == len(rows) + 2
    assert median_seconds(lambda: None, runs=3, warmup=1) >= 0
    with pytest.raises(ValueError, match="runs >= 1"):
        median_seconds(lambda: None, runs=0)
    with pytest.raises(TypeError, match="ResNet"):
        stage_costs(torch.nn.Conv2d(3, 3, 1), 32)
    with pytest.raises(ValueError, match="positive"):
        stage_costs(build_resnet("resnet18", 32), 0)


def test_format_table_shows_missing_values_as_a_dash():
    """None and NaN (the ``total`` row's pixels ratio) print as "-", not as "None" or "nan"."""
    rows = [{"stage": "layer4", "pixels": 16.0, "latency": 12.5},
            {"stage": "total", "pixels": float("nan"), "latency": None}]
    last = format_table(rows).splitlines()[-1].split()
    assert last == ["total", "-", "-"]
    assert "nan" not in format_table(rows) and "None" not in format_table(rows)


def test_bottleneck_first_block_ratios():
    """ResNet-50 at a small size: the first layer3 / layer4 blocks cost ~3.17x / ~12.69x, the rest 4x / 16x."""
    plain = stage_costs(build_resnet("resnet50", 32), 64, time_stages=False)
    dilated = stage_costs(build_resnet("resnet50", 8), 64, time_stages=False)
    for s, target, first in (("layer3", 4, 1507328 / 475136), ("layer4", 16, 24117248 / 1900544)):
        r = [d / p for d, p in zip(dilated[s].block_flops, plain[s].block_flops, strict=True)]
        assert r[0] == pytest.approx(first, rel=1e-9)
        assert all(v == pytest.approx(target, rel=1e-9) for v in r[1:])


def test_fig3_tensors_and_drawing():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastfcn.lessons.fig3 import draw_fig3, fig3_tensors

    x, w = torch.tensor([3.0, 1, 4, 1, 5, 9, 2, 6, 5]), torch.tensor([1.0, 2.0, -1.0])
    t = fig3_tensors(x, w)
    assert torch.equal(t["dilated"], t["dilated_torch"]) and torch.equal(t["strided"], t["strided_torch"])
    assert t["f_in0"].numel() == 5 and t["f_in1"].numel() == 4
    fig = draw_fig3(x, w)
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="odd number of taps"):
        draw_fig3(x, torch.ones(2))
