"""Checks of ex-bench-crop-batch (chapter 6): the largest batch at 480x480 from the linear fit of saved bytes."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-bench-crop-batch"


def _batch(f, per_image_scale, subtract_fixed=True):
    import math

    room = f["budget_bytes"] - (f["state_bytes"] + f["other_fixed_bytes"] if subtract_fixed else 0)
    return math.floor(room / (f["per_image_bytes"] * per_image_scale))


@test_case(points=1)
def largest_batch_at_480(batch_480, fits):
    assert batch_480 is not None, (
        "no answer yet: set batch_480 to a dict {model name: largest batch at 480x480}, one entry per fit")
    assert isinstance(batch_480, dict), "batch_480 should be a dict: {f['name']: batch for f in fits}"
    for f in fits:
        model, scale = f["name"], 480 / f["size"]
        assert model in batch_480, f"batch_480 has no entry for {model!r}: one per fit, keyed by f['name']"
        got, expected = batch_480[model], _batch(f, scale**2)
        if got == expected:
            continue
        slips = [  # what a slip gives, and what it teaches; in a small run two slips can give the same batch
            (f["max_batch"], f"{got} is the batch at {f['size']}x{f['size']}, the size that was measured; the bytes "
             f"saved per image scale with the pixels: multiply per_image_bytes by (480 / {f['size']}) ** 2"),
            (_batch(f, scale), f"you scaled per_image_bytes by 480 / {f['size']}, the side; the saved feature maps "
             f"grow with the area: (480 / {f['size']}) ** 2"),
            (_batch(f, scale**2, subtract_fixed=False), "the whole 12 GB is not room for images: subtract "
             "state_bytes (weights, gradients, momentum) and other_fixed_bytes first"),
            (expected + 1, f"{got} images do not fit; the largest batch that fits rounds down (math.floor)"),
        ]
        taught = [message for value, message in slips if got == value]
        assert not taught, f"{model}: " + "; or ".join(taught)
        raise AssertionError(f"{model}: you say {got}, the fit gives {expected}: floor((budget_bytes - state_bytes "
                             "- other_fixed_bytes) / (per_image_bytes * (480 / size) ** 2))")
