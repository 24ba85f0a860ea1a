"""Checks of ex-bench-flops-prediction (chapter 6): the speed-up of EncNet+JPU that the GMAC counts predict."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-bench-flops-prediction"


def _close(a, b, tolerance=0.01):
    return abs(a - b) <= tolerance * abs(b)


@test_case(points=1)
def prediction_is_the_ratio_of_the_gmac_counts(predicted_speedup, ex_none, ex_jpu, enc_none, enc_jpu):
    from fastfcn import paper

    assert predicted_speedup is not None, (
        "no answer yet: set predicted_speedup to the speed-up that latency proportional to GMACs predicts")
    got = float(predicted_speedup)
    # the counts at 512x512 (the solution's), and those of this run's table where it has the EncNet rows
    counts = [(ex_none, ex_jpu)]
    if enc_none and enc_jpu:
        counts.append((enc_none["gmacs"], enc_jpu["gmacs"]))
    if any(_close(got, none / jpu) for none, jpu in counts):
        return
    if any(_close(got, jpu / none) for none, jpu in counts):
        raise AssertionError("this is the JPU model's GMACs over the dilated model's: below 1, a slow-down. The "
                             "speed-up is the dilated model's count over the JPU model's")
    if any(_close(got, none - jpu) for none, jpu in counts):
        raise AssertionError("this is the difference of the two GMAC counts; a speed-up is a ratio: "
                             "dilated GMACs / JPU GMACs")
    if _close(got, paper.table2_ratio("encnet", "resnet50")):
        raise AssertionError("this is the paper's measured speed-up; the prediction is what the GMAC counts alone "
                             "say: dilated GMACs / JPU GMACs, then compare the two")
    none, jpu = counts[-1]
    raise AssertionError(f"your prediction is {got:.3g}; if latency were proportional to GMACs the JPU model would "
                         f"run {none:.1f} / {jpu:.1f} = {none / jpu:.2f} times as fast (the GMACs column of the table)")
