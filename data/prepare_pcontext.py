"""Prepare Pascal Context for fastfcn: VOC2010 + trainval_merged.json -> label PNGs and train/val lists.

    python data/prepare_pcontext.py --root data            # expects data/VOCdevkit/VOC2010/{JPEGImages,trainval_merged.json}

See data/README.md for the downloads; the work is done by fastfcn.data.pcontext_prepare.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastfcn.data.pcontext_prepare import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
