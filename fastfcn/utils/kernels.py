"""The same CPU kernels on every x86 machine, so that the book's trainings give the same numbers on every CPU.

PyTorch picks its CPU kernels by the processor: ATen's vectorised loops and oneDNN's convolutions by the
widest instruction set (AVX2 or AVX-512), MKL's matrix products by the processor's model and vendor. The
same float32 training then rounds differently on two machines, and the difference grows over the SGD
iterations: chapter 7's sixteen fine-tunings on a 2-core AVX2 EPYC and on a 2-core AVX-512-BF16 Xeon
differed by up to 0.9 points of mIoU per row (2026-12-05), and PSP's JPU-minus-dilated read -1.6 points on
one and 0.0 on the other: enough to flip the chapter's checks against the seed spread.

:func:`use_portable_kernels` pins all three to kernels every x86-64 CPU with AVX2 runs: ATen and oneDNN at
AVX2 (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``) and MKL on its vendor-independent code path
(``MKL_CBWR=COMPATIBLE``). Measured on the Xeon (2026-12-05), chapter 7 with the pins against the EPYC's
committed run of the same sixteen trainings (``book/results/table1_designs_cpu.json``, channels last): the
ASPP rows and PSP JPU gave its mIoU to the last digit (28.651341875966963, 28.604169263636056,
32.52589365638513), PSP dilated within 2e-5 points, the EncNet rows, whose encoding layer multiplies
matrices in MKL, within 0.035 points; the same six of eight shape checks held. Unpinned, the rows differed by
up to 0.9 points. (The EPYC ran MKL's default path, which the Xeon cannot choose; the compatible path is
MKL's own means to the same results on Intel and AMD processors, not yet measured on both.) The price is
speed where the CPU has more: the Xeon's trainings ran 1.3-1.7x slower at AVX2, chapter 7 238-266 s instead
of 182 s.

The pins are environment variables that the libraries read once, at their first use: they hold when set
before the process's first tensor operation (importing torch or fastfcn is early enough), so chapters
call :func:`use_portable_kernels` in their first cell. Variables the user set are left as they are.
"""

from __future__ import annotations

import os
import platform

__all__ = ["PORTABLE_KERNELS", "portable_kernels_possible", "portable_kernels_active", "use_portable_kernels",
           "kernels_in_use"]

PORTABLE_KERNELS: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                    "MKL_CBWR": "COMPATIBLE"}


def portable_kernels_possible() -> bool:
    """Whether this machine can run the portable kernels: an x86-64 CPU with AVX2."""
    from .environment import cpu_flags

    return platform.machine().lower() in ("x86_64", "amd64") and "avx2" in cpu_flags()


def portable_kernels_active() -> bool:
    """Whether this process runs the portable kernels (the pins set, and ATen dispatching to AVX2)."""
    import torch

    pinned = all(os.environ.get(name) == value for name, value in PORTABLE_KERNELS.items())
    return pinned and torch.backends.cpu.get_cpu_capability() == "AVX2"


def use_portable_kernels(enabled: bool = True, device: str = "cpu") -> str:
    """Pin this process to the portable kernels when it computes on the CPU (``device``) and ``enabled`` (else
    leave the CPU's fastest), and say in one line which kernels run. Call it before the first tensor operation:
    a library that has already chosen its kernels keeps them, and the line then says how to start again."""
    import torch

    # reading the capability fixes ATen's choice: only once the pins are set, or where none will be
    isa = torch.backends.cpu.get_cpu_capability
    if not str(device).startswith("cpu"):
        return f"on {device}: the GPU's own kernels (the portable kernels are the CPU's)"
    if not enabled:
        return f"this CPU's fastest kernels ({isa()}): numbers may differ slightly from another CPU's"
    if not portable_kernels_possible():
        return (f"this CPU's own kernels ({platform.machine()}, {isa()}): the portable ones need an x86-64 CPU "
                "with AVX2, so numbers may differ slightly from the book's")
    for name, value in PORTABLE_KERNELS.items():
        os.environ.setdefault(name, value)
    if portable_kernels_active():
        return "the portable CPU kernels (AVX2, MKL's compatible path): the book's numbers on any AVX2 CPU"
    others = {n: os.environ[n] for n in PORTABLE_KERNELS if os.environ.get(n) != PORTABLE_KERNELS[n]}
    if others:
        return (f"this CPU's kernels as set in the environment ({', '.join(f'{k}={v}' for k, v in others.items())}): "
                "numbers may differ slightly from the book's")
    return (f"this CPU's fastest kernels ({isa()}): they were chosen before "
            "the portable ones could be pinned; restart the kernel and run this cell first for the book's numbers")


def kernels_in_use(device: str = "cpu") -> str:
    """The kernels this process computes with on ``device``, in words for a sentence."""
    if not str(device).startswith("cpu"):
        return "the GPU's kernels"
    return "the portable AVX2 kernels" if portable_kernels_active() else "this CPU's own kernels"
