"""Printed text of the rendered book (:mod:`fastfcn.utils.text`): lines that fit its code outputs, numbers and
lists in words."""

from __future__ import annotations

from fastfcn.utils.text import PRINT_WIDTH, fit_lines, in_words, number_word, signed


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


def test_counts_and_lists_in_words() -> None:
    assert [number_word(n) for n in (2, 4, 10, 11, 1)] == ["two", "four", "ten", "11", "1"]
    assert [in_words(x) for x in (["a"], ["a", "b"], ["a", "b", "c"])] == ["a", "a and b", "a, b and c"]


def test_signed_numbers_never_read_minus_zero() -> None:
    assert [signed(x) for x in (1.84, -1.6, -0.04, 0.04, 0.0)] == ["+1.8", "-1.6", "0.0", "0.0", "0.0"]
    assert signed(-0.004, 2) == "0.00" and signed(-0.006, 2) == "-0.01"
