"""FastFCN in PyTorch: dilated vs. plain ResNet backbones, JPU, EncNet/ASPP/PSP heads.

The layout shows the design; each layer imports only the layers above it in this list (a test
checks it):

* ``utils/``      primitives with one home each: atomic writes, the device, the timer, the environment stamp,
                 the thread count, the allocator's settings
* ``models/``     the network, one file per part: ``resnet.py`` (OS8/OS32 backbones), ``jpu.py`` (Section 3.3.3),
                 ``fpn.py`` (bilinear, FPN), ``heads/`` (EncNet, ASPP, PSP, FCN), ``blocks.py``, ``fastfcn.py``
                 (``FastFCN``, ``build_model``), ``official.py`` (the released checkpoints); it imports nothing else
* ``complexity.py`` FLOPs and activation memory; ``ops.py`` the split, merge and reduce operators S, M, R of
                 Section 3.3
* ``paper.py``     the paper's numbers, as data; ``profiles.py`` the sizes of smoke / quick / full
* ``data/``       datasets (procedural, Pascal Context, ADE20K), transforms, the one image reader
* ``checkpoint.py`` our checkpoint format (weights + configuration)
* ``inference/``  evaluation as the official test code, metrics, ``predict``, the fast path
* ``training/``   config, loop, losses, schedule, distributed, RNG; Table 1's rows, their labels and colours
* ``benchmark/``  Table 2: specs, options, models, measurement, memory, worker, variants, report
* ``book/``       the chapters' API (``record``, ``note``), the runner (papermill), the build (jupyter-book),
                 Table 1's run cache (``trainings``), the results files, the reproduction report, the front page
* ``lessons/``    helpers only the chapters use, named after their chapter's topic
* ``cli/``        the ``fastfcn`` command, one module per family of sub-commands

Only the network (and the two tools above, which need nothing but torch) is imported here:
``import fastfcn`` loads no data, training or book code (``fastfcn.optimize``, the fast inference
path, is loaded when it is first used). The import also keeps freed memory in the process for reuse
(:mod:`fastfcn.utils.allocator`: no page faults for every forward's activations; ``FASTFCN_SYSTEM_MALLOC=1``
keeps glibc's defaults).
"""

from . import ops
from .complexity import complexity
from .models import (
    BACKBONES,
    HEADS,
    JPU,
    MEAN,
    STD,
    UPSAMPLINGS,
    FastFCN,
    build_model,
    build_resnet,
    build_upsampler,
    convert_official_state_dict,
    load_official,
)
from .utils.allocator import keep_freed_memory

__version__ = "0.1.0"

keep_freed_memory()  # before any network runs, so that every measurement of the process sees the same allocator


def __getattr__(name: str):  # fastfcn.optimize, loaded on first use: `import fastfcn` stays the network only
    if name == "optimize":
        from .inference.fast_path import optimize

        return optimize
    raise AttributeError(f"module 'fastfcn' has no attribute {name!r}")


__all__ = ["BACKBONES", "HEADS", "JPU", "MEAN", "STD", "UPSAMPLINGS", "FastFCN", "build_model", "build_resnet",
           "build_upsampler", "complexity", "convert_official_state_dict", "load_official", "ops"]
