"""``fastfcn`` commands run as a reader types them, inside a running Python (a chapter's kernel).

:func:`fastfcn_command` prints the command line, then runs the command-line interface in-process (the same code
as the ``fastfcn`` executable, without starting another Python and importing torch again) and checks its exit
status: another status than the expected one stops the chapter, with the command in the message.
"""

from __future__ import annotations

import shlex
import sys
from os import PathLike

__all__ = ["fastfcn_command"]


def fastfcn_command(*args: str | int | float | PathLike, expect: int = 0) -> None:
    """Print ``$ fastfcn ARGS`` and run it; an exit status other than ``expect`` raises :class:`RuntimeError`."""
    from . import main

    argv = [str(a) for a in args]
    print("$ fastfcn " + shlex.join(argv), flush=True)
    status = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if status != expect:
        raise RuntimeError(f"`fastfcn {shlex.join(argv)}` exited with status {status}, expected {expect}")
