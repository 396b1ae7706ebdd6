"""DSG's operation counts from layer shapes alone (no data, no torch): Fig. 7 of arXiv 1810.00859.

A DSG layer (every CONV/FC layer but the classifier) computes, per output row (a sample of an FC
layer, a sliding window of a conv), ``k`` low-dimensional MACs per output for the virtual
activations and ``kept = ⌈(1 − γ)·n_K⌉`` exact outputs of ``n_CRS`` MACs each; its error
propagation reads only the kept outputs' gradients; the weight gradient is counted dense. Per
sample (the paper's two conventions are :func:`reductions`' two dictionaries):

- forward ``rows·(kept·Kr + K·k)`` against ``rows·K·Kr``; backward-data ``rows·kept·Kr``;
  backward-weight ``rows·K·Kr`` (dense); training = 3·dense / (fwd + bwd-data + bwd-weight),
  inference = dense forward / DSG forward (the paper's convention: projection additions are
  "negligible");
- with overheads: plus the ternary projection's additions ``(rows + K)·Kr·k`` (the ``k × Kr``
  matrix counted dense) and the selection compares ``rows·K + rows·K·⌈log2(kept + 1)⌉``, one op
  each.

The projection dimension ``k`` follows a rule (:data:`K_RULES`): the paper states only
``k = O(log N / ε²)``. ``"ln-d"``: ``⌊ln(d + 1)/ε²⌋`` (the constant of the one public
re-implementation, mtcrawshaw/dynamic-sparse-graph; the default of the training method);
``"achlioptas"``: ``⌈4·ln(d + 1)/(ε²/2 − ε³/3)⌉``, the bound of Achlioptas (2003), whose
ternary ``±√3`` projection with ``s = 3`` is the one DSG uses. Both are capped at ``d``.

The paper's models at their own geometry are :func:`paper_models` (shape tables; the CIFAR ones
equal traces/zoo/models.py's, a test checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

K_RULES = ("ln-d", "achlioptas")


def projection_dim(d: int, eps: float, rule: str = "ln-d") -> int:
    """The JL dimension for reduction length ``d`` at distortion ``ε`` (module doc), in [1, d]."""
    if rule == "ln-d":
        k = math.floor(math.log(d + 1) / eps**2)
    elif rule == "achlioptas":
        k = math.ceil(4 * math.log(d + 1) / (eps**2 / 2 - eps**3 / 3))
    else:
        raise ValueError(f"k rule must be one of {K_RULES}, got {rule!r}")
    return max(1, min(d, k))


def projection_additions(rows: int, n_out: int, d: int, k: int) -> int:
    """Additions to project ``rows`` input rows and ``n_out`` weight columns (length ``d``) to
    ``k`` dimensions with a dense-counted ternary ``k×d`` matrix: ``(rows + n_out)·d·k``."""
    return (rows + n_out) * d * k


def selection_compares(rows: int, n_out: int, kept: int, topks: int) -> int:
    """Compares to select: every row's ``n_out`` scores against a threshold, plus ``topks`` heap
    top-k searches of ``n_out·⌈log2(kept + 1)⌉`` compares each."""
    return rows * n_out + topks * n_out * math.ceil(math.log2(kept + 1))


@dataclass(frozen=True)
class GemmShape:
    """One CONV/FC layer per sample: ``rows`` output positions, reduction ``kr``, ``k_out`` outputs."""

    name: str
    rows: int  # P·Q (1 for FC)
    kr: int  # C·R·S (input features for FC)
    k_out: int
    classifier: bool = False

    @property
    def macs(self) -> int:
        return self.rows * self.kr * self.k_out


def _conv(name: str, c: int, k: int, r: int, side: int, stride: int = 1) -> tuple[GemmShape, int]:
    """A 'same'-padded ``r×r`` conv on a ``side×side`` input; returns it and the output side."""
    out = (side + 2 * (r // 2) - r) // stride + 1
    return GemmShape(name, out * out, c * r * r, k), out


def vgg(cfg: tuple, side: int, fcs: tuple[int, ...], n_classes: int, c: int = 3) -> list[GemmShape]:
    """VGG: 3×3 'same' convs (``cfg`` widths, ``"M"`` a 2×2 max-pool), then FC layers."""
    out, i = [], 0
    for v in cfg:
        if v == "M":
            side //= 2
            continue
        i += 1
        layer, side = _conv(f"conv{i}", c, int(v), 3, side)
        out.append(layer)
        c = int(v)
    feats = c * side * side
    for j, width in enumerate(fcs, start=1):
        out.append(GemmShape(f"fc{j}", 1, feats, width))
        feats = width
    return [*out, GemmShape("out", 1, feats, n_classes, classifier=True)]


def resnet(widths: tuple[int, ...], blocks: int, side: int, n_classes: int, stem: int,
           imagenet: bool = False, fc_hidden: int | None = None, c: int = 3) -> list[GemmShape]:
    """Basic-block ResNet: stem (3×3, or 7×7/2 + 3×3/2 max-pool for ImageNet), stages of
    ``blocks`` blocks (stride 2 at each later stage's first block, 1×1 projection shortcut where
    shape changes), global average pool, optional hidden FC, classifier."""
    if imagenet:
        first, side = _conv("stem", c, stem, 7, side, 2)
        side = (side + 2 - 3) // 2 + 1  # 3×3/2 max-pool, padding 1
    else:
        first, side = _conv("stem", c, stem, 3, side)
    out, c_in = [first], stem
    for s, width in enumerate(widths):
        for b in range(blocks):
            stride = 2 if (s > 0 and b == 0) else 1
            conv1, new_side = _conv(f"s{s}b{b}.conv1", c_in, width, 3, side, stride)
            conv2, _ = _conv(f"s{s}b{b}.conv2", width, width, 3, new_side)
            out += [conv1, conv2]
            if stride != 1 or c_in != width:
                out.append(GemmShape(f"s{s}b{b}.proj", new_side * new_side, c_in, width))
            side, c_in = new_side, width
    if fc_hidden:
        out.append(GemmShape("fc", 1, c_in, fc_hidden))
        c_in = fc_hidden
    return [*out, GemmShape("out", 1, c_in, n_classes, classifier=True)]


VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def paper_models() -> dict[str, list[GemmShape]]:
    """DSG's benchmark models at their data sets' geometry (CIFAR 32×32, ImageNet 224×224).

    CIFAR ones as traces/zoo/models.py builds them (``vgg8-paper``, ``resnet8``, ``resnet20``,
    ``wrn-8-2``); ImageNet: VGG-16 (FC 4096-4096), ResNet-18 and WRN-18-2 (ResNet-18 with every
    block twice as wide, stem 64, as Zagoruyko & Komodakis widen it)."""
    return {
        "vgg8 (cifar10)": vgg((128, 128, "M", 256, 256, "M", 512, 512, "M"), 32, (1024,), 10),
        "resnet8 (cifar10)": resnet((16, 32, 64), 1, 32, 10, 16, fc_hidden=64),
        "resnet20 (cifar10)": resnet((16, 32, 64), 3, 32, 10, 16),
        "wrn-8-2 (cifar10)": resnet((32, 64, 128), 1, 32, 10, 16),
        "vgg8 (cifar100)": vgg((128, 128, "M", 256, 256, "M", 512, 512, "M"), 32, (1024,), 100),
        "wrn-8-2 (cifar100)": resnet((32, 64, 128), 1, 32, 100, 16),
        "vgg16 (imagenet)": vgg(VGG16_CFG, 224, (4096, 4096), 1000),
        "resnet18 (imagenet)": resnet((64, 128, 256, 512), 2, 224, 1000, 64, imagenet=True),
        "wrn-18-2 (imagenet)": resnet((128, 256, 512, 1024), 2, 224, 1000, 64, imagenet=True),
    }


def reductions(layers: list[GemmShape], gamma: float, eps: float = 0.5, rule: str = "ln-d",
               dense_first: bool = False) -> dict[str, float]:
    """DSG's training and inference op reductions for one sample of ``layers`` at ``γ``.

    Keys: ``training``, ``inference`` (the paper's convention), ``training_with_overheads``,
    ``inference_with_overheads``, ``drs_overhead`` (the virtual-activation MACs over the dense
    forward), ``dense_forward_macs``, ``dsg_forward_macs``. The classifier stays dense, and the
    first layer too with ``dense_first``.
    """
    dense = fwd = bwd = extra = drs = 0
    for i, s in enumerate(layers):
        dense += s.macs
        if s.classifier or (i == 0 and dense_first):
            fwd += s.macs
            bwd += s.macs
            continue
        kept = math.ceil((1 - gamma) * s.k_out - 1e-9)
        k = projection_dim(s.kr, eps, rule)
        drs += s.rows * s.k_out * k
        fwd += s.rows * (kept * s.kr + s.k_out * k)
        bwd += s.rows * kept * s.kr
        extra += projection_additions(s.rows, s.k_out, s.kr, k) + selection_compares(s.rows, s.k_out, kept,
                                                                                    s.rows)
    train = fwd + bwd + dense
    return {"training": 3 * dense / train, "inference": dense / fwd,
            "training_with_overheads": 3 * dense / (train + extra),
            "inference_with_overheads": dense / (fwd + extra),
            "drs_overhead": drs / dense, "dense_forward_macs": dense, "dsg_forward_macs": fwd}
