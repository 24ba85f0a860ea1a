"""``fastfcn`` commands run as a reader types them, inside a running Python (a chapter's kernel).

:func:`fastfcn_command` prints the command line, then runs the command-line interface in-process (the same code
as the ``fastfcn`` executable, without starting another Python and importing torch again) and checks its exit
status: another status than the expected one stops the chapter, with the command in the message.
"""

from __future__ import annotations

import shlex
import sys
from os import PathLike

from ..utils.text import PRINT_WIDTH

__all__ = ["command_lines", "fastfcn_command"]


def command_lines(argv: list[str], width: int = PRINT_WIDTH) -> str:
    """``$ fastfcn ARGS`` as a shell would take it, continued with `` \\`` before an option where a line would
    pass ``width`` characters (an option stays with its values), so that the lines can be pasted as they are."""
    groups: list[str] = []
    for word in map(shlex.quote, argv):
        if groups and not word.startswith("--") and groups[-1].startswith("--"):
            groups[-1] += " " + word  # an option's values stay beside it
        else:
            groups.append(word)
    lines = ["$ fastfcn"]
    for group in groups:
        if len(lines[-1]) + 1 + len(group) + 2 > width and lines[-1] != "$ fastfcn":
            lines[-1] += " \\"
            lines.append("    " + group)
        else:
            lines[-1] += " " + group
    return "\n".join(lines)


def fastfcn_command(*args: str | int | float | PathLike, expect: int = 0) -> None:
    """Print ``$ fastfcn ARGS`` (see :func:`command_lines`) and run it; an exit status other than ``expect``
    raises :class:`RuntimeError`."""
    from . import main

    argv = [str(a) for a in args]
    print(command_lines(argv), flush=True)
    status = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if status != expect:
        raise RuntimeError(f"`fastfcn {shlex.join(argv)}` exited with status {status}, expected {expect}")
