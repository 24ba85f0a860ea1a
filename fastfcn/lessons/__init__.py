"""Helpers that only the book's chapters use, each named after its chapter's topic: figures, tables, plumbing.

* :mod:`~fastfcn.lessons.stages` -- chapter 2: the cost of each ResNet stage, dilated vs plain
* :mod:`~fastfcn.lessons.equivalence` -- chapter 3: Eq. 2 and 3 checked, y_s = R(y_d) on a whole ResNet
* :mod:`~fastfcn.lessons.fig3` -- chapter 3: the paper's Fig. 3 drawn from real tensors
* :mod:`~fastfcn.lessons.joint_upsampling` -- chapter 4: Eq. 1 and 4 as a worked example
* :mod:`~fastfcn.lessons.fig4` -- chapter 5: the paper's Fig. 4 (JPU) drawn from a real forward pass
* :mod:`~fastfcn.lessons.ablation` -- chapters 7-8: the Table 1 ablation's tables, noise, comparisons and plots
* :mod:`~fastfcn.lessons.floor` -- chapter 7: how many fine-tuning iterations the floor would take, and their cost
* :mod:`~fastfcn.lessons.differences` -- chapter 8: error maps, boundary bands, IoU per object size
* :mod:`~fastfcn.lessons.context` -- chapter 8: a context-free crop classifier of the look-alike classes
* :mod:`~fastfcn.lessons.kept_positions` -- chapter 9: which positions of the dilated map the plain one keeps
* :mod:`~fastfcn.lessons.recovery` -- chapter 9: how well bilinear, FPN and JPU regress the dilated C5

The book's machinery lives in :mod:`fastfcn.book`: Table 1's run cache (``trainings``), the results files,
the reproduction report and the front page. Table 1's rows, labels and colours are
:mod:`fastfcn.training.table1`'s.
"""
