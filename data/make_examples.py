"""Draw the example pictures of data/README.md into data/examples/ (small PNGs, deterministic).

    python data/make_examples.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import matplotlib  # noqa: E402

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

from fastfcn.data import ProceduralScenes, TrainTransform, colorize, denormalize  # noqa: E402

OUT = Path(__file__).resolve().parent / "examples"


def save(fig: plt.Figure, path: Path) -> None:
    """Save at 80 dpi with a 256-colour palette (a third of the bytes of a full-colour PNG)."""
    fig.savefig(path, dpi=80)
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def legend(ds: ProceduralScenes, fig: plt.Figure) -> None:
    handles = [Patch(facecolor=ds.colours[k] / 255, edgecolor="0.3", label=f"{k} {name}")
               for k, name in enumerate(ds.classes)]
    handles.append(Patch(facecolor="black", label="255 ignore"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)


def scenes(n: int = 5, size: int = 192) -> None:
    ds = ProceduralScenes("train", num_images=n, image_size=size, seed=0)
    fig, axes = plt.subplots(2, n, figsize=(2.0 * n, 4.3))
    for i in range(n):
        image, mask = ds[i]
        axes[0, i].imshow(image.permute(1, 2, 0))
        axes[1, i].imshow(colorize(mask, colours=ds.colours))
        axes[0, i].set_title(f"train #{i}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    legend(ds, fig)
    fig.suptitle(f"procedural scenes ({size}x{size}) and their labels", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, OUT / "procedural.png")
    plt.close(fig)


def augmented(n: int = 5) -> None:
    ds = ProceduralScenes("train", num_images=1, image_size=(128, 192), seed=0)
    image, mask = ds[0]
    transform = TrainTransform(crop_size=128, scale_range=(0.5, 2.0))
    fig, axes = plt.subplots(2, n + 1, figsize=(2.0 * (n + 1), 4.3))
    axes[0, 0].imshow(image.permute(1, 2, 0))
    axes[1, 0].imshow(colorize(mask, colours=ds.colours))
    axes[0, 0].set_title("original 128x192", fontsize=8)
    for i in range(n):
        torch.manual_seed(i)
        x, m = transform(image, mask)
        axes[0, i + 1].imshow(denormalize(x).permute(1, 2, 0))
        axes[1, i + 1].imshow(colorize(m, colours=ds.colours))
        axes[0, i + 1].set_title(f"TrainTransform, seed {i}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    legend(ds, fig)
    fig.suptitle("scale 0.5-2, flip, pad (ignore = black), crop 128", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, OUT / "augmented.png")
    plt.close(fig)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    scenes()
    augmented()
    for p in sorted(OUT.glob("*.png")):
        print(p, f"{p.stat().st_size / 1024:.0f} KiB")
