"""Chapter 5's Fig. 4: the shapes drawn are the shapes the real JPU and head compute."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fastfcn.lessons.fig4 import draw_fig4, fig4_shapes  # noqa: E402
from fastfcn.models import build_model  # noqa: E402


@torch.no_grad()
def test_fig4_labels_are_the_modules_shapes(one_thread):
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", jpu_width=16, num_classes=5).eval()
    image = torch.randn(1, 3, 72, 88)  # not square: height and width must not be swapped anywhere
    fig, drawn = draw_fig4(model, image)

    # the same tensors, computed step by step without hooks
    _, c3, c4, c5 = model.backbone(image)
    jpu = model.upsample
    e3, e4, e5 = jpu.conv3(c3), jpu.conv4(c4), jpu.conv5(c5)
    r4, r5 = (F.interpolate(e, c3.shape[-2:], mode="bilinear", align_corners=True) for e in (e4, e5))
    y_c = jpu.fuse(c3, c4, c5)
    out = jpu(c3, c4, c5)
    expected = {"C3": c3, "C4": c4, "C5": c5, "embed3": e3, "embed4": e4, "embed5": e5, "resized4": r4,
                "resized5": r5, "y_c": y_c, "jpu": out, "head_conv": model.head.conv(out)}
    expected.update({f"rate{b.dilation}": b(y_c) for b in jpu.dilations})
    assert drawn == {k: tuple(v.shape[1:]) for k, v in expected.items()}
    assert drawn["jpu"][0] == 4 * 16 and drawn["y_c"][0] == 3 * 16

    # and every one of them is written on the figure
    labels = {t.get_text() for t in fig.axes[0].texts}
    for key, shape in drawn.items():
        assert " x ".join(map(str, shape)) in labels, key
    assert sum("separable conv, d=" in t for t in labels) == 4
    plt.close(fig)


def test_fig4_needs_a_jpu_model(one_thread):
    with torch.device("meta"):
        model = build_model("encnet", backbone="resnet18", upsampling="none", num_classes=5)
    with pytest.raises(ValueError, match="upsampling='jpu'"):
        fig4_shapes(model, torch.empty(1, 3, 64, 64, device="meta"))


def test_fig4_shapes_on_the_meta_device_give_the_papers_configuration():
    """The paper's ResNet-50, width 512 at 512x512 costs nothing on the meta device."""
    with torch.device("meta"):
        model = build_model("encnet", backbone="resnet50", upsampling="jpu", jpu_width=512)
        shapes = fig4_shapes(model, torch.empty(1, 3, 512, 512))
    assert shapes["C5"] == (2048, 16, 16) and shapes["y_c"] == (1536, 64, 64) and shapes["jpu"] == (2048, 64, 64)
