"""The book's machinery: the chapter API (``record``, ``note``, ``notes``), the runner, the HTML build.

* :mod:`~fastfcn.book.record` -- what a chapter calls; needs nothing beyond the standard library.
* :mod:`~fastfcn.book.chapters` -- the chapters of ``_toc.yml``, read with jupytext.
* :mod:`~fastfcn.book.runner` -- ``fastfcn book run``: papermill, one kernel per chapter, cached.
* :mod:`~fastfcn.book.build` -- ``fastfcn book build``: jupyter-book 1.x, strict and offline.
* :mod:`~fastfcn.book.exercises` -- the exercises' kind and effort, and cutting out the solutions.
* :mod:`~fastfcn.book.editions` -- ``--edition student``: the same chapters without the solutions.
* :mod:`~fastfcn.book.trainings` -- chapters 7-9: Table 1's trainings, found by configuration, resumed, reused.
* :mod:`~fastfcn.book.results` -- the front page and chapter 11: reading the chapters' results files.
* :mod:`~fastfcn.book.report`, :mod:`~fastfcn.book.claims`, :mod:`~fastfcn.book.report_summary` -- chapter 11:
  the paper's tables and claims beside ours, with a status each.
* :mod:`~fastfcn.book.front_page` -- ``intro.md``: the headline figure and short answers.

Only :mod:`~fastfcn.book.record` is imported here: a chapter's ``from fastfcn.book import note`` loads none
of the modules above (they need matplotlib, papermill or the training code, and are imported by name).
"""

from .record import RESULTS_ENV, note, notes, record

__all__ = ["RESULTS_ENV", "note", "notes", "record"]
