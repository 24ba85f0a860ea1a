"""ResNet backbones at output stride 32 (plain) or 8 (dilated), returning C2..C5.

Layer names follow torchvision (``conv1``, ``bn1``, ``layer1``..``layer4``) so that torchvision's
ImageNet weights load unchanged. The ``*s`` variants have the deep stem used by FastFCN and
PyTorch-Encoding (three 3x3 convolutions 64-64-128), stored as ``conv1`` = ``Sequential`` exactly
like the official checkpoints.

Dilated layout (output stride 8), as torchvision's ``replace_stride_with_dilation``: layer3 has
dilation 2 and layer4 dilation 4, and the first block of each keeps the previous dilation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "BACKBONES", "build_resnet"]


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/34 (He et al., 2016): two 3x3 conv-BN, the first with the stride (or, in
    the dilated layout, the previous dilation), plus the identity or a 1x1 projection, then ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=first_dilation,
                               dilation=first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as the official code: no new tensor per block
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride and dilation on the 3x3 conv), as torchvision and FastFCN."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        del dilation  # a bottleneck has one 3x3 conv; it takes first_dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=first_dilation,
                               dilation=first_dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity  # in place, as the official code: no new tensor per block
        return self.relu(out)


class ResNet(nn.Module):
    """A ResNet trunk without the classifier: FastFCN's plain backbone at output stride 32 (Section 3.2), or
    DilatedFCN's at output stride 8 (Section 3.1, Fig. 1: the last two stages dilated instead of strided).
    ``forward`` returns ``[c2, c3, c4, c5]``.

    ``c2``..``c5`` are the outputs of layer1..layer4 (the paper's Conv2..Conv5), at strides
    4, 8, 16, 32 when ``output_stride=32`` and 4, 8, 8, 8 when ``output_stride=8``.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 output_stride: int = 32, deep_stem: bool = False, width: int = 64) -> None:
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f"output_stride must be 8 (dilated) or 32 (plain), got {output_stride}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer (64 for the standard ResNets), got {width!r}")
        self.output_stride = output_stride
        self.deep_stem = deep_stem
        self.width = width
        stem_width = 2 * width if deep_stem else width
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, 2 * width, 3, 1, 1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = stem_width
        self.dilation = 1
        dilate = output_stride == 8
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2, dilate=dilate)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2, dilate=dilate)
        self.channels = [width * block.expansion * 2**i for i in range(4)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            # trade the stride for dilation: resolution is kept, the receptive field is not lost
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, self.dilation, previous_dilation, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, self.dilation, self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: Tensor) -> list[Tensor]:
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


# name -> (block, layers, deep stem, width of the first stage)
BACKBONES: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int], bool, int]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], False, 64),
    "resnet34": (BasicBlock, [3, 4, 6, 3], False, 64),
    "resnet50": (Bottleneck, [3, 4, 6, 3], False, 64),
    "resnet101": (Bottleneck, [3, 4, 23, 3], False, 64),
    "resnet50s": (Bottleneck, [3, 4, 6, 3], True, 64),
    "resnet101s": (Bottleneck, [3, 4, 23, 3], True, 64),
    # ResNet-18 at half width (32-64-128-256 channels, a quarter of the arithmetic): the book's miniature
    # trunk, small enough for the sixteen Table 1 trainings on a 2-core CPU
    "resnet18_w32": (BasicBlock, [2, 2, 2, 2], False, 32),
}

_TORCHVISION_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights",
                        "resnet50": "ResNet50_Weights", "resnet101": "ResNet101_Weights"}


def imagenet_weights_url(name: str) -> str | None:
    """Where torchvision downloads the ImageNet weights of backbone ``name`` from (``None``: it has none)."""
    if name not in _TORCHVISION_WEIGHTS:
        return None
    import torchvision.models as tvm

    return getattr(tvm, _TORCHVISION_WEIGHTS[name]).IMAGENET1K_V1.url


def _load_backbone_weights(model: ResNet, name: str, weights: str) -> None:
    if weights == "imagenet":
        if name not in _TORCHVISION_WEIGHTS:
            raise ValueError(
                f"torchvision has no ImageNet weights for the backbone {name!r}; "
                "pass weights_backbone=PATH to a local state_dict file instead"
            )
        import torchvision.models as tvm

        enum = getattr(tvm, _TORCHVISION_WEIGHTS[name]).IMAGENET1K_V1
        try:
            state = enum.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # URLError, socket timeouts, hash errors
            raise RuntimeError(
                f"could not download the ImageNet weights for {name} ({type(exc).__name__}: {exc}). "
                f"Without network, download {enum.url} elsewhere and pass "
                "weights_backbone='/path/to/file.pth'"
            ) from exc
    else:
        from pathlib import Path

        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights_backbone={weights!r} is neither 'imagenet' nor an existing file"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    state = {k.removeprefix("module.").removeprefix("pretrained."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"backbone weights do not fit {name}: missing {sorted(missing)[:10]}"
            f"{' ...' if len(missing) > 10 else ''}, unexpected {sorted(unexpected)[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''}"
        )


def build_resnet(name: str, output_stride: int = 32, weights: str | None = None) -> ResNet:
    """Build a backbone by name; ``weights`` is None, ``"imagenet"`` (torchvision) or a file path."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    block, layers, deep, width = BACKBONES[name]
    model = ResNet(block, layers, output_stride=output_stride, deep_stem=deep, width=width)
    if weights is not None:
        _load_backbone_weights(model, name, weights)
    return model

