"""Checks of ex-closed-form (chapter 4): Eq. 1 for the linear family as least squares, against Adam's loss."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-closed-form"


def _optimum(x_l, y_l, bias=True):
    """The mean squared error of the best per-pixel affine (or, without bias, linear) map, in float64."""
    import torch

    X = x_l.double().flatten(2)[0].T                      # pixels x channels
    if bias:
        X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
    Y = y_l.double().flatten(2)[0].T
    solution = torch.linalg.lstsq(X, Y).solution
    return float(((X @ solution - Y) ** 2).mean())


def _number(value, what):
    assert value is not None, f"no answer yet: set {what} to its loss (a number)"
    return float(value)


def _close(a, b, tolerance=1e-4):
    return abs(a - b) <= tolerance * abs(b)


@test_case(points=1)
def least_squares_is_the_optimum(least_squares_loss):
    import torch

    assert callable(least_squares_loss), (
        "no answer yet: define least_squares_loss(x_l, y_l) that solves Eq. 1 for the linear family with "
        "torch.linalg.lstsq and returns its mean squared error")
    generator = torch.Generator().manual_seed(0)
    x_l = torch.rand(1, 3, 12, 10, generator=generator)
    mix = 3 * torch.randn(3, 3, generator=generator)
    y_l = torch.sigmoid(torch.einsum("oc,nchw->nohw", mix, x_l) + 0.5)   # not affine: the optimum is above 0
    try:
        answer = least_squares_loss(x_l, y_l)
    except (RuntimeError, ValueError) as error:
        raise AssertionError(f"least_squares_loss raised {error}. lstsq(X, Y) wants one row per pixel: X is "
                             "pixels x (3 + 1), Y is pixels x 3 (flatten the map, then transpose)") from None
    assert answer is not None, "no answer yet: least_squares_loss returns None; return the loss (a number)"
    got = float(answer)
    expected, values = _optimum(x_l, y_l), y_l.numel()
    if _close(got, _optimum(x_l, y_l, bias=False)) and not _close(got, expected):
        raise AssertionError("this is the best *linear* map: the family is affine, h(x) = Ax + b; give X a column "
                             "of ones so that lstsq also finds the bias b")
    if _close(got, values * expected):
        raise AssertionError("this is the sum of the squared errors: the chapter's loss is their mean over the "
                             "N values (pixels times channels), as F.mse_loss computes it")
    if _close(got, y_l.shape[1] * expected):
        raise AssertionError("this sums the squared errors over the 3 channels: the loss is the mean over all "
                             "N = pixels x channels values")
    assert _close(got, expected), (
        f"on a 12x10 test pair your loss is {got:.6g}, the least-squares optimum is {expected:.6g}. Solve "
        "X @ [A; b] = Y with X = the pixels' colours and a column of ones, then take the mean of the squared "
        "residuals")


@test_case(points=1)
def descent_does_not_beat_the_optimum(closed_form_loss, adam_loss):
    closed, adam = _number(closed_form_loss, "closed_form_loss"), _number(adam_loss, "adam_loss")
    assert adam >= closed * (1 - 1e-3), (
        f"Adam's loss {adam:.6g} is below the closed form's {closed:.6g}, but no member of the family fits the "
        "pair better than the least-squares optimum: the two numbers are not losses of the same problem (the "
        "same pair (x_l, y_l), the same mean)")


@test_case(points=1, hidden=True)
def losses_of_this_chapter(closed_form_loss, adam_loss, x_l, y_l, fits):
    closed, adam = _number(closed_form_loss, "closed_form_loss"), _number(adam_loss, "adam_loss")
    expected = _optimum(x_l.cpu(), y_l.cpu())
    assert _close(closed, expected, 1e-3), (
        f"closed_form_loss is {closed:.6g}; on the chapter's pair (x_l, y_l) the optimum is {expected:.6g}")
    descent = fits["linear"].losses[-1]
    assert _close(adam, descent, 1e-3), (
        f"adam_loss is {adam:.6g}; the chapter's linear fit ended at {descent:.6g}: fits['linear'].losses[-1] "
        "(losses[0] is the loss of the untrained start)")
