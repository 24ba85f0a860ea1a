"""The op-by-op profile of one forward, in torch and in ONNX Runtime, on the same input."""

from __future__ import annotations

import pytest
import torch

from fastfcn.benchmark.op_profile import KINDS, compare_op_times, op_kind, profile_model
from fastfcn.models import build_model


def test_ops_are_sorted_into_kinds_by_exact_name_where_a_prefix_would_mislead() -> None:
    assert op_kind("aten::mkldnn_convolution", "torch") == "convolution"
    assert op_kind("aten::add_", "torch") == "element-wise"
    assert op_kind("aten::addmm", "torch") == "other"          # a matrix product, not an addition
    assert op_kind("aten::upsample_bilinear2d", "torch") == "resize"
    assert op_kind("aten::max_pool2d_with_indices", "torch") == "pooling"
    assert op_kind("aten::copy_", "torch") == "layout copies"
    assert op_kind("FusedConv", "onnxruntime") == "convolution" and op_kind("Concat", "onnxruntime") == "concatenation"
    assert op_kind("Einsum", "onnxruntime") == "other"


def test_both_runtimes_profile_the_same_convolutions() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16)
    result = profile_model(model, "fold_bn", 64)
    for runtime in ("torch", "onnxruntime"):
        kinds = result[runtime]["kinds"]
        assert list(kinds) == list(KINDS) and kinds["convolution"] > 0
        assert result[runtime]["total_ms"] == pytest.approx(sum(kinds.values()))
    ours, theirs = result["torch"]["convolutions"], result["onnxruntime"]["convolutions"]
    assert "1x3x64x64 * 64x3x7x7" in ours and "1x3x64x64 * 64x3x7x7" in theirs   # the stem, in both
    assert len(set(ours) & set(theirs)) >= len(theirs) // 2
    compared = compare_op_times(result["torch"], result["onnxruntime"], top=3)
    assert [k for k, _, _ in compared["kinds"]] == list(KINDS) and len(compared["convolutions"]) == 3


def test_the_script_names_a_row_that_is_not_in_table_2_in_one_line(capsys) -> None:
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "profile_ops.py"
    argv, sys.argv = sys.argv, [str(script), "--row", "encnet/resnet50/unet"]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and err.count("\n") == 0 and "is not a row of Table 2" in err
