"""Checks of ex-differences-bins (chapter 8): five size bins that give every object exactly one bin."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-differences-bins"


@test_case(points=1)
def five_bins_cover_every_size_once(five_bins):
    import itertools

    assert isinstance(five_bins, dict), (
        "no answer yet: set five_bins to a dict {name: (lowest area, highest area)}, like SIZE_BINS")
    assert len(five_bins) == 5, f"you give {len(five_bins)} bins: the question asks for five"
    edges = list(five_bins.values())
    assert all(isinstance(e, (tuple, list)) and len(e) == 2 and e[0] < e[1] for e in edges), (
        "each bin is a pair (lo, hi) with lo < hi: it holds the objects of lo <= area < hi")
    assert edges[0][0] == 0, "the first bin starts at 0, or the smallest objects fall in no bin"
    assert edges[-1][1] == float("inf"), (
        "the last bin ends at float('inf'), or the largest objects fall in no bin (find_objects then raises)")
    for (name_a, (_, hi)), (name_b, (lo, _)) in itertools.pairwise(five_bins.items()):
        assert lo >= hi, (
            f"{name_a} (ends at {hi}) and {name_b} (starts at {lo}) overlap: an object of an area in between is "
            f"counted in {name_a} only, and {name_b} misses it")
        assert lo == hi, (
            f"between {name_a} (ends at {hi}) and {name_b} (starts at {lo}) lies a gap: an object of that area "
            "falls in no bin. A bin holds lo <= area < hi, so each bin starts where the previous one ends")
