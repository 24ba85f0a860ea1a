"""The book's machinery: the chapter API (``record``, ``note``), the runner, the HTML build.

* :mod:`~fastfcn.book.record` -- what a chapter calls; needs nothing beyond the standard library.
* :mod:`~fastfcn.book.chapters` -- the chapters of ``_toc.yml``, read with jupytext.
* :mod:`~fastfcn.book.runner` -- ``fastfcn book run``: papermill, one kernel per chapter, cached.
* :mod:`~fastfcn.book.build` -- ``fastfcn book build``: jupyter-book 1.x, strict and offline.
* :mod:`~fastfcn.book.exercises` -- the exercises' kind and effort, and cutting out the solutions.
* :mod:`~fastfcn.book.editions` -- ``--edition student``: the same chapters without the solutions.
"""

from .record import RESULTS_ENV, note, record

__all__ = ["RESULTS_ENV", "note", "record"]
