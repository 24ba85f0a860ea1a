"""Helpers that only the book's chapters use, each named after its chapter's topic.

* :mod:`~fastfcn.lessons.stages` -- chapter 2: the cost of each ResNet stage, dilated vs plain
* :mod:`~fastfcn.lessons.equivalence` -- chapter 3: Eq. 2 and 3 checked, y_s = R(y_d) on a whole ResNet
* :mod:`~fastfcn.lessons.fig3` -- chapter 3: the paper's Fig. 3 drawn from real tensors
* :mod:`~fastfcn.lessons.joint_upsampling` -- chapter 4: Eq. 1 and 4 as a worked example
* :mod:`~fastfcn.lessons.fig4` -- chapter 5: the paper's Fig. 4 (JPU) drawn from a real forward pass
* :mod:`~fastfcn.lessons.trainings` -- chapters 7-9: Table 1's trainings, found by configuration, resumed, reused
* :mod:`~fastfcn.lessons.ablation` -- chapters 7-8: the Table 1 ablation's tables, noise, comparisons and plots
* :mod:`~fastfcn.lessons.differences` -- chapter 8: error maps, boundary bands, IoU per object size
* :mod:`~fastfcn.lessons.context` -- chapter 8: a context-free crop classifier of the look-alike classes
* :mod:`~fastfcn.lessons.recovery` -- chapter 9: how well bilinear, FPN and JPU regress the dilated C5
* :mod:`~fastfcn.lessons.results` -- the front page and chapter 10: reading the chapters' results files
* :mod:`~fastfcn.lessons.report`, :mod:`~fastfcn.lessons.claims`, :mod:`~fastfcn.lessons.report_summary` --
  chapter 10: the paper's tables and claims beside ours, with a status each
"""
