"""Checks of ex-ablation-context (chapter 8): the swaps between balloon and ball read from a confusion matrix."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-ablation-context"


@test_case(points=2)
def shares_are_read_along_the_true_class(swap_shares, BALLOON, BALL):
    import torch

    assert callable(swap_shares), (
        "no answer yet: define swap_shares(cm) that returns (share of balloon pixels predicted as ball, "
        "share of ball pixels predicted as balloon) for a summed confusion matrix cm")
    classes = max(BALLOON, BALL) + 3
    generator = torch.Generator().manual_seed(0)
    # a matrix with different row and column sums, so that every slip gives another number
    cm = torch.randint(0, 40, (classes, classes), generator=generator) + 200 * torch.eye(classes, dtype=torch.long)
    cm[BALLOON, BALL], cm[BALL, BALLOON] = 37, 11
    answer = swap_shares(cm)
    assert answer is not None, "no answer yet: swap_shares returns None; return the two shares"
    assert len(answer) == 2, "return two shares: (balloon pixels predicted as ball, ball pixels predicted as balloon)"
    balloon_as_ball, ball_as_balloon = (float(v) for v in answer)
    cm = cm.double()
    expected = (float(cm[BALLOON, BALL] / cm[BALLOON].sum()), float(cm[BALL, BALLOON] / cm[BALL].sum()))
    got = (balloon_as_ball, ball_as_balloon)

    def near(a, b):
        return all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))

    if near(got, (100 * expected[0], 100 * expected[1])):
        raise AssertionError("these are per cent: return the shares as fractions between 0 and 1")
    if near(got, (float(cm[BALLOON, BALL] / cm[:, BALL].sum()), float(cm[BALL, BALLOON] / cm[:, BALLOON].sum()))):
        raise AssertionError("the rows of the confusion matrix are the true classes and the columns the predictions: "
                             "a share of the balloon pixels divides by the balloon row's sum, not by a column's "
                             "(that would be a share of the pixels *predicted* as ball)")
    if near(got, (float(cm[BALL, BALLOON] / cm[BALLOON].sum()), float(cm[BALLOON, BALL] / cm[BALL].sum()))):
        raise AssertionError("cm[BALL, BALLOON] counts ball pixels predicted as balloon: the first index is the "
                             "true class, so balloon pixels predicted as ball are cm[BALLOON, BALL]")
    if near(got, (float(cm[BALLOON, BALL] / cm.sum()), float(cm[BALL, BALLOON] / cm.sum()))):
        raise AssertionError("these are shares of all pixels: divide by the number of balloon pixels "
                             "(cm[BALLOON].sum()) and of ball pixels (cm[BALL].sum())")
    assert near(got, expected), (
        f"on a test matrix you give {got[0]:.4f} and {got[1]:.4f}, the shares are {expected[0]:.4f} and "
        f"{expected[1]:.4f}: cm[BALLOON, BALL] / cm[BALLOON].sum() and cm[BALL, BALLOON] / cm[BALL].sum()")
