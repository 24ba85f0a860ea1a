"""Helpers that only the book's chapters use, each named after its chapter's topic.

* :mod:`~fastfcn.lessons.stages` -- chapter 2: the cost of each ResNet stage, dilated vs plain
* :mod:`~fastfcn.lessons.equivalence` -- chapter 3: Eq. 2 and 3 checked, y_s = R(y_d) on a whole ResNet
* :mod:`~fastfcn.lessons.fig3` -- chapter 3: the paper's Fig. 3 drawn from real tensors
* :mod:`~fastfcn.lessons.joint_upsampling` -- chapter 4: Eq. 1 and 4 as a worked example
* :mod:`~fastfcn.lessons.fig4` -- chapter 5: the paper's Fig. 4 (JPU) drawn from a real forward pass
* :mod:`~fastfcn.lessons.ablation` -- chapter 7: the Table 1 ablation's tables, bootstrap intervals and plots
"""
