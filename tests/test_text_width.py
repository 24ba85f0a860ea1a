"""Printed lines fit the rendered book's code outputs (:mod:`fastfcn.utils.text`)."""

from __future__ import annotations

from fastfcn.utils.text import PRINT_WIDTH, fit_lines


def test_long_lines_continue_indented_between_words() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    text = fit_lines(["short line", words], width=50)
    lines = text.splitlines()
    assert lines[0] == "short line" and all(len(line) <= 50 for line in lines)
    assert all(line.startswith("  ") for line in lines[2:]) and not lines[1].startswith(" ")
    assert " ".join(line.strip() for line in lines[1:]) == words  # only the breaks are new


def test_a_word_longer_than_a_line_stays_whole() -> None:
    path = "/root/.cache/fastfcn/" + "x" * 120 + ".onnx"
    assert fit_lines([f"kept as {path}"]).splitlines() == ["kept as", f"  {path}"]
    assert PRINT_WIDTH == 100 and fit_lines(["a" * 100]) == "a" * 100
