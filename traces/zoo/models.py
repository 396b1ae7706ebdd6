"""Built-in models (imports torch): small ones for tests and demos, and the papers' own.

Small: MLP, LeNet-5, VGG-8 at width 16, a small ResNet. The papers' models (see
docs/reproduction.md for the sources): LeNet-300-100 and LeNet-5-Caffe (DST, MNIST), the DSG
paper's MLP and LeNet (Fashion-MNIST; their exact widths are in DSG's unread appendix, so these
are assumptions, stated in :data:`MODELS`), VGG-8 at the DSG paper's width (128-128-256-256-512-512
convs, FC-1024), ResNet-8 (three basic blocks and two FC layers, as DSG describes it), ResNet-20,
WRN-8-2 and VGG-16 for CIFAR (DST: BN γ initialized to 0.5, two FC layers).

Transformers (a GPT-like character model, a small ViT) are in :mod:`traces.zoo.transformer` and
registered here by name. Every model's GEMM layers are ``nn.Conv2d`` / ``nn.Linear`` modules (plus,
in the transformers, attention products and an embedding), and each describes itself to the
training methods through :meth:`Model.blocks`: each GEMM layer, the BN that follows it (if any)
and whether it is the classifier. ``block_order`` chooses GEMM → BN → ReLU (the usual) or
GEMM → ReLU → BN (what DSG's double-mask selection needs).
"""

from __future__ import annotations

import itertools
import math
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ORDERS = ("bn-relu", "relu-bn")


@dataclass(frozen=True)
class Block:
    """A GEMM layer and what follows it."""

    name: str  # qualified name of the GEMM module
    gemm: nn.Module
    bn: nn.Module | None  # the BatchNorm right after it, if any
    classifier: bool = False


class Model(nn.Module, metaclass=ABCMeta):
    """Base class: ``blocks()`` lists the GEMM layers in forward order."""

    block_order = "bn-relu"

    def blocks(self) -> list[Block]:
        names = {m: n for n, m in self.named_modules()}
        out = [Block(names[g], g, bn) for g, bn in self._pairs()]
        return [*out[:-1], Block(out[-1].name, out[-1].gemm, out[-1].bn, classifier=True)]

    def selectable(self, module: nn.Module) -> bool:
        """Whether DSG's output selection applies to this GEMM module (all but the classifier;
        the transformers narrow it, traces/zoo/transformer.py)."""
        return True

    @abstractmethod
    def _pairs(self) -> list[tuple[nn.Module, nn.Module | None]]:
        """Each GEMM module with the BatchNorm that follows it (or None), in forward order."""

    def _act(self, y: torch.Tensor, bn: nn.Module | None) -> torch.Tensor:
        """BN and ReLU in this model's block order."""
        if bn is None:
            return F.relu(y, inplace=True)
        if self.block_order == "bn-relu":
            return F.relu(bn(y), inplace=True)
        return bn(F.relu(y, inplace=True))


class MLP(Model):
    """Fully connected: ``in → hidden… → classes``, BN after each hidden layer when ``bn``."""

    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (128, 64),
                 bn: bool = True, block_order: str = "bn-relu") -> None:
        super().__init__()
        self.block_order = block_order
        widths = [in_features, *hidden]
        self._hidden = len(hidden)
        for i, (a, b) in enumerate(itertools.pairwise(widths), start=1):
            self.add_module(f"fc{i}", nn.Linear(a, b))
            self.add_module(f"bn{i}", nn.BatchNorm1d(b) if bn else None)
        self.out = nn.Linear(widths[-1], n_classes)

    def _pairs(self):
        hidden = [(getattr(self, f"fc{i}"), getattr(self, f"bn{i}")) for i in range(1, self._hidden + 1)]
        return [*hidden, (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for fc, bn in self._pairs()[:-1]:
            x = self._act(fc(x), bn)
        return self.out(x)


class LeNet5(Model):
    """LeNet-5: two 5×5 convs with max-pooling, then three FC layers (no BN, as the original).

    For 8×8 inputs the convs are padded so the feature maps stay usable (8→8→4→4→2).
    """

    def __init__(self, in_shape: Sequence[int], n_classes: int, block_order: str = "bn-relu") -> None:
        super().__init__()
        c, h, _ = in_shape
        pad = 2 if h < 28 else 0
        self.conv1 = nn.Conv2d(c, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad)
        side = h
        for _ in range(2):
            side = (side + 2 * pad - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.out = nn.Linear(84, n_classes)
        self.block_order = block_order

    def _pairs(self):
        return [(self.conv1, None), (self.conv2, None), (self.fc1, None), (self.fc2, None), (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x), inplace=True), 2)
        x = F.max_pool2d(F.relu(self.conv2(x), inplace=True), 2)
        x = F.relu(self.fc1(x.flatten(1)), inplace=True)
        x = F.relu(self.fc2(x), inplace=True)
        return self.out(x)


class LeNet5Caffe(Model):
    """LeNet-5-Caffe (28×28): conv 20 5×5, pool, conv 50 5×5, pool, FC 500, FC classes; optional BN."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, bn: bool = False,
                 block_order: str = "bn-relu") -> None:
        super().__init__()
        self.block_order = block_order
        c, h, _ = in_shape
        self.conv1 = nn.Conv2d(c, 20, 5)
        self.bn1 = nn.BatchNorm2d(20) if bn else None
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.bn2 = nn.BatchNorm2d(50) if bn else None
        side = ((h - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"lenet-5-caffe needs inputs of at least 16×16 (MNIST: 28×28), got {h}×{h}")
        self.fc1 = nn.Linear(50 * side * side, 500)
        self.bn3 = nn.BatchNorm1d(500) if bn else None
        self.out = nn.Linear(500, n_classes)

    def _pairs(self):
        return [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.fc1, self.bn3), (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self._act(self.conv1(x), self.bn1), 2)
        x = F.max_pool2d(self._act(self.conv2(x), self.bn2), 2)
        x = self._act(self.fc1(x.flatten(1)), self.bn3)
        return self.out(x)


VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(Model):
    """VGG-16 for 32×32 inputs: 13 3×3 conv layers with BN, then FC 512 → FC classes (DST's CIFAR
    model; BN's γ starts at 0.5 as in its code)."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, block_order: str = "bn-relu") -> None:
        super().__init__()
        self.block_order = block_order
        c, h, _ = in_shape
        self._convs: list[tuple[str, str]] = []
        self._pools: set[int] = set()
        i = 0
        for v in VGG16_CFG:
            if v == "M":
                self._pools.add(i - 1)
                continue
            i += 1
            self.add_module(f"conv{i}", nn.Conv2d(c, int(v), 3, padding=1, bias=False))
            bn = nn.BatchNorm2d(int(v))
            nn.init.constant_(bn.weight, 0.5)
            self.add_module(f"bn{i}", bn)
            c = int(v)
        side = max(1, h // 32)
        self.fc1 = nn.Linear(512 * side * side, 512)
        self.bn_fc1 = nn.BatchNorm1d(512)
        nn.init.constant_(self.bn_fc1.weight, 0.5)
        self.out = nn.Linear(512, n_classes)
        self._n_conv = i

    def _pairs(self):
        convs = [(getattr(self, f"conv{i}"), getattr(self, f"bn{i}")) for i in range(1, self._n_conv + 1)]
        return [*convs, (self.fc1, self.bn_fc1), (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, bn) in enumerate(self._pairs()[: self._n_conv]):
            x = self._act(conv(x), bn)
            if i in self._pools and x.shape[-1] > 1:
                x = F.max_pool2d(x, 2)
        x = self._act(self.fc1(x.flatten(1)), self.bn_fc1)
        return self.out(x)


class VGG8(Model):
    """VGG-8 style: six 3×3 conv layers with BN in three pooled stages, then two FC layers."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, width: int = 16,
                 block_order: str = "bn-relu") -> None:
        super().__init__()
        self.block_order = block_order
        c, h, _ = in_shape
        chans = [c, width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        for i in range(6):
            self.add_module(f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False))
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(chans[i + 1]))
        side = max(1, h // 8)
        self.fc1 = nn.Linear(4 * width * side * side, 8 * width)
        self.out = nn.Linear(8 * width, n_classes)

    def _pairs(self):
        convs = [(getattr(self, f"conv{i}"), getattr(self, f"bn{i}")) for i in range(1, 7)]
        return [*convs, (self.fc1, None), (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, bn) in enumerate(self._pairs()[:6]):
            x = self._act(conv(x), bn)
            if i % 2 == 1 and x.shape[-1] > 1:
                x = F.max_pool2d(x, 2)
        x = F.relu(self.fc1(x.flatten(1)), inplace=True)
        return self.out(x)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convs with BN and a residual add (1×1 projection if needed)."""

    def __init__(self, owner: ResNet, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self._owner = [owner]  # a list, so the parent is not registered as a submodule
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.proj = None
        if stride != 1 or c_in != c_out:
            self.proj = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.proj_bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self._owner[0]._act
        h = act(self.conv1(x), self.bn1)  # x also feeds the shortcut: a shared input
        h = self.bn2(self.conv2(h))
        short = x if self.proj is None else self.proj_bn(self.proj(x))
        return F.relu(h + short, inplace=True)


class ResNet(Model):
    """A small ResNet for 32×32 or 8×8 inputs: a stem conv and three stages of basic blocks."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, width: int = 16,
                 blocks_per_stage: int = 1, block_order: str = "bn-relu", stem: int | None = None,
                 fc_hidden: int | None = None) -> None:
        super().__init__()
        self.block_order = block_order
        c, _, _ = in_shape
        stem = width if stem is None else stem
        self.stem = nn.Conv2d(c, stem, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem)
        stages, c_in = [], stem
        for s, c_out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                stages.append(BasicBlock(self, c_in, c_out, 2 if (s > 0 and b == 0) else 1))
                c_in = c_out
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, fc_hidden) if fc_hidden else None
        self.out = nn.Linear(fc_hidden or c_in, n_classes)

    def _pairs(self):
        pairs: list[tuple[nn.Module, nn.Module | None]] = [(self.stem, self.stem_bn)]
        for blk in self.layers:
            pairs += [(blk.conv1, blk.bn1), (blk.conv2, blk.bn2)]
            if blk.proj is not None:
                pairs.append((blk.proj, blk.proj_bn))
        if self.fc is not None:
            pairs.append((self.fc, None))
        return [*pairs, (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self.stem(x), self.stem_bn)
        x = F.adaptive_avg_pool2d(self.layers(x), 1).flatten(1)
        if self.fc is not None:
            x = F.relu(self.fc(x), inplace=True)
        return self.out(x)


# name -> (constructor(input_shape, n_classes, block_order), wants image-shaped input)
MODELS = {
    "mlp": (lambda s, n, o: MLP(math.prod(s), n, hidden=(128, 64), block_order=o), False),
    "lenet5": (lambda s, n, o: LeNet5(s, n, block_order=o), True),
    "vgg8": (lambda s, n, o: VGG8(s, n, block_order=o), True),
    "resnet": (lambda s, n, o: ResNet(s, n, block_order=o), True),
    # the papers' models
    "lenet-300-100": (lambda s, n, o: MLP(math.prod(s), n, hidden=(300, 100), bn=False, block_order=o),
                      False),
    "lenet-5-caffe": (lambda s, n, o: LeNet5Caffe(s, n, block_order=o), True),
    # DSG's MLP and LeNet (Fashion-MNIST): widths assumed (the paper's appendix is unread): the
    # LeNet-300-100 and LeNet-5-Caffe shapes with BN after every hidden layer, which DSG's
    # double-mask selection is built around
    "dsg-mlp": (lambda s, n, o: MLP(math.prod(s), n, hidden=(300, 100), bn=True, block_order=o), False),
    "dsg-lenet": (lambda s, n, o: LeNet5Caffe(s, n, bn=True, block_order=o), True),
    "vgg8-paper": (lambda s, n, o: VGG8(s, n, width=128, block_order=o), True),
    "resnet8": (lambda s, n, o: ResNet(s, n, width=16, blocks_per_stage=1, fc_hidden=64, block_order=o),
                True),
    "resnet20": (lambda s, n, o: ResNet(s, n, width=16, blocks_per_stage=3, block_order=o), True),
    "wrn-8-2": (lambda s, n, o: ResNet(s, n, width=32, blocks_per_stage=1, stem=16, block_order=o), True),
    "vgg16": (lambda s, n, o: VGG16(s, n, block_order=o), True),
    # transformers (traces/zoo/transformer.py): GPT-like on text (shakespeare), ViT on images (mnist)
    "gpt-tiny": (lambda s, n, o: _transformer().build_gpt("gpt-tiny", s, n), False),
    "gpt-small": (lambda s, n, o: _transformer().build_gpt("gpt-small", s, n), False),
    "vit-tiny": (lambda s, n, o: _transformer().build_vit("vit-tiny", s, n), True),
    "vit-small": (lambda s, n, o: _transformer().build_vit("vit-small", s, n), True),
    # LSTMs of nn.Linear gate layers over image rows (traces/zoo/recurrent.py): DST's MNIST LSTM-a/-b
    "lstm-tiny": (lambda s, n, o: _recurrent().build_lstm("lstm-tiny", s, n), True),
    "dst-lstm-a": (lambda s, n, o: _recurrent().build_lstm("dst-lstm-a", s, n), True),
    "dst-lstm-b": (lambda s, n, o: _recurrent().build_lstm("dst-lstm-b", s, n), True),
}


def _recurrent():  # imported when used: it imports this module
    from . import recurrent

    return recurrent


def _transformer():  # imported when used: it imports this module
    from . import transformer

    return transformer


def sequence_length(name: str) -> int | None:
    """The token context of a sequence model (it trains on a text data set), else None."""
    presets = _transformer().GPT_PRESETS
    return presets[name]["context"] if name in presets else None


def build_model(name: str, input_shape: Sequence[int], n_classes: int,
                block_order: str = "bn-relu") -> Model:
    """A built-in model by name, sized for the dataset."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if block_order not in ORDERS:
        raise ValueError(f"block_order must be one of {ORDERS}, got {block_order!r}")
    return MODELS[name][0](tuple(input_shape), n_classes, block_order)


def wants_image(name: str) -> bool:
    """Whether the model takes image-shaped (C, H, W) input."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name][1]
