"""The networks h of the deep-network runs, their homogeneity degree and the step that makes the FLS knobs equal.

Every architecture maps flattened inputs (n, D) to outputs (n, K) and ends in a bias-free (by default) linear
readout; :func:`simulate.train.deep.train_deep` trains f = c h at step eta / c (docs/train.md).

Homogeneity and the equivalent step (docs/design.md section 2, docs/train.md "Architectures"). When h is
positively L-homogeneous in all its parameters, h(s theta) = s^L h(theta) for s > 0, then c h(theta) =
h(c^(1/L) theta), and a GD or SGD step on theta with multiplier c and step eta / c, mapped by
theta -> c^(1/L) theta, is a step with multiplier 1 and step eta c^(2/L - 1). So the run (c, alpha, eta / c)
equals the run (1, c^(1/L) alpha, eta c^(2/L - 1)) step for step (:meth:`Architecture.equivalent_init_scale`).
The degrees (bias-free; any bias breaks homogeneity and :attr:`Architecture.degree` is then None):

| kind | h | degree L |
| --- | --- | --- |
| ``mlp`` | linear layers with ReLU between | number of linear layers |
| ``cnn`` | stride-2 convolutions with ReLU, linear readout | convolutions + 1 |
| ``vgg`` | stages of (3x3 convolution, ReLU) x ``depth`` then 2x2 max pooling; linear readout | convolutions + 1 |
| ``resnet`` | stem convolution; residual blocks; stride-2 convolutions between stages; average pool; readout | (*) |
| ``resnet`` with ``batch_norm`` | the same, batch norm after every convolution, identity skips | 2 (eps -> 0) |

(*) 2 + 2 x (number of residual blocks) + (stages - 1). Max pooling and average pooling have no parameters and
are positively 1-homogeneous in their input, so they do not change the degree.

A residual block y = relu(x + g(x)) with a two-convolution branch g is not homogeneous (x has degree k, g(x)
degree k + 2), so without batch norm the skip carries a trained scalar gain a * b (two factors, each initialized
to 1 and scaled by alpha like every parameter): y = relu(a b x + conv2(relu(conv1(x)))), degree k + 2 on both
paths. At alpha = 1 this is the ordinary identity skip. With batch norm (statistics of the batch at hand,
no running averages, affine scale and shift) every convolution feeds a normalization, which makes the output of
each normalized layer 1-homogeneous in its affine parameters alone; blocks keep degree 1 with the plain identity
skip, and the readout makes h 2-homogeneous — exactly when BN's eps is 0, and to a relative error of order
eps / (pre-normalization variance) otherwise. Batch statistics also mean a member's outputs on a minibatch depend
on the whole minibatch, and test outputs use the test set's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from fls.theory.validation import ParameterError, check_choice, check_int, check_positive

KINDS = ("mlp", "cnn", "vgg", "resnet")


class MLP(nn.Module):
    """x -> Linear -> ReLU -> ... -> Linear, widths ``hidden``; bias-free by default (then homogeneous)."""

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, *, bias: bool = False
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out, bias=bias), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], out_features, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _spatial_dims(input_shape: Sequence[int]) -> int:
    """1 for (C, L) signals, 2 for (C, H, W) images; anything else is refused."""
    spatial = len(tuple(input_shape)) - 1
    if spatial not in (1, 2):
        raise ParameterError(f"input_shape = {input_shape!r} is not supported; allowed: (C, L) or (C, H, W)")
    return spatial


def _conv(spatial: int) -> type[nn.Module]:
    return nn.Conv1d if spatial == 1 else nn.Conv2d


class _ShapedStack(nn.Module):
    """A stack of layers applied to flattened inputs (n, D) reshaped to (n, *input_shape)."""

    def __init__(self, input_shape: Sequence[int], layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(-1, *self.input_shape))


def _readout(channels: int, spatial: Sequence[int], out_features: int, bias: bool) -> list[nn.Module]:
    """Flatten the (channels, *spatial) feature maps and map them linearly to the outputs."""
    return [nn.Flatten(), nn.Linear(channels * int(np.prod(spatial)), out_features, bias=bias)]


class SmallCNN(_ShapedStack):
    """Convolutions (kernel k, padding k // 2, stride 2, ReLU) with ``channels`` filters, then a linear readout.

    ``input_shape`` is (C, L) for signals (Conv1d) or (C, H, W) for images (Conv2d); inputs arrive flattened.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        out_features: int,
        *,
        kernel_size: int = 3,
        bias: bool = False,
    ) -> None:
        conv = _conv(_spatial_dims(input_shape))
        spatial, previous = list(input_shape[1:]), input_shape[0]
        layers: list[nn.Module] = []
        for width in channels:
            layers += [
                conv(previous, width, kernel_size, stride=2, padding=kernel_size // 2, bias=bias),
                nn.ReLU(),
            ]
            spatial = [(s + 2 * (kernel_size // 2) - kernel_size) // 2 + 1 for s in spatial]
            previous = width
        super().__init__(input_shape, [*layers, *_readout(previous, spatial, out_features, bias)])


class VGG(_ShapedStack):
    """VGG-style stack: per stage, ``depth`` x (3x3 convolution, padding 1, ReLU) then 2x2 max pooling; readout.

    A stage whose input is smaller than 2 along a spatial axis skips the pooling (tiny test images).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        widths: Sequence[int],
        out_features: int,
        *,
        depth: int = 2,
        bias: bool = False,
    ) -> None:
        spatial_dims = _spatial_dims(input_shape)
        conv = _conv(spatial_dims)
        pool = nn.MaxPool1d if spatial_dims == 1 else nn.MaxPool2d
        spatial, previous = list(input_shape[1:]), input_shape[0]
        layers: list[nn.Module] = []
        for width in widths:
            for _ in range(depth):
                layers += [conv(previous, width, 3, padding=1, bias=bias), nn.ReLU()]
                previous = width
            if min(spatial) >= 2:
                layers.append(pool(2))
                spatial = [s // 2 for s in spatial]
        super().__init__(input_shape, [*layers, *_readout(previous, spatial, out_features, bias)])


def _conv_unit(
    conv: type[nn.Module],
    fan_in: int,
    fan_out: int,
    *,
    stride: int,
    bias: bool,
    norm_eps: float | None,
    spatial: int,
) -> list[nn.Module]:
    """A 3x3 convolution (padding 1), followed by batch norm over the batch at hand (with eps ``norm_eps``)
    unless ``norm_eps`` is None."""
    layers = [conv(fan_in, fan_out, 3, stride=stride, padding=1, bias=bias)]
    if norm_eps is not None:
        norm = nn.BatchNorm1d if spatial == 1 else nn.BatchNorm2d
        layers.append(norm(fan_out, eps=norm_eps, track_running_stats=False))
    return layers


class ResidualBlock(nn.Module):
    """y = relu(skip(x) + branch(x)), branch = conv, ReLU, conv (each with batch norm when asked).

    skip(x) = a b x with trained scalars a, b (initialized to 1) without batch norm, so that both paths have the
    same homogeneity degree; the plain identity x with batch norm (module docstring).
    """

    def __init__(self, width: int, spatial: int, *, bias: bool, norm_eps: float | None) -> None:
        super().__init__()
        conv = _conv(spatial)
        unit = {"stride": 1, "bias": bias, "norm_eps": norm_eps, "spatial": spatial}
        self.branch = nn.Sequential(
            *_conv_unit(conv, width, width, **unit), nn.ReLU(), *_conv_unit(conv, width, width, **unit)
        )
        self.gains = None if norm_eps is not None else nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.gains is None else self.gains[0] * self.gains[1] * x
        return torch.relu(skip + self.branch(x))


class SmallResNet(_ShapedStack):
    """Stem convolution, then per stage (a stride-2 convolution between stages) ``blocks`` residual blocks;
    global average pooling and a linear readout. Batch norm (eps ``norm_eps``) after every convolution unless
    ``norm_eps`` is None."""

    def __init__(
        self,
        input_shape: Sequence[int],
        widths: Sequence[int],
        out_features: int,
        *,
        blocks: int = 1,
        bias: bool = False,
        norm_eps: float | None = None,
    ) -> None:
        spatial = _spatial_dims(input_shape)
        conv = _conv(spatial)
        unit = {"bias": bias, "norm_eps": norm_eps, "spatial": spatial}
        layers: list[nn.Module] = [*_conv_unit(conv, input_shape[0], widths[0], stride=1, **unit), nn.ReLU()]
        for stage, width in enumerate(widths):
            if stage > 0:
                layers += [*_conv_unit(conv, widths[stage - 1], width, stride=2, **unit), nn.ReLU()]
            layers += [ResidualBlock(width, spatial, bias=bias, norm_eps=norm_eps) for _ in range(blocks)]
        pool = nn.AdaptiveAvgPool1d(1) if spatial == 1 else nn.AdaptiveAvgPool2d(1)
        super().__init__(input_shape, [*layers, pool, *_readout(widths[-1], (), out_features, bias)])


@dataclass(frozen=True)
class Architecture:
    """Which network h is (module docstring): ``kind`` and its ``hidden`` widths (MLP hidden layers, CNN
    channels, VGG or ResNet stage widths); ``depth`` = convolutions per VGG stage or residual blocks per ResNet
    stage; ``batch_norm`` (with the normalization's ``norm_eps``) for the ResNet only."""

    kind: str = "mlp"
    hidden: tuple[int, ...] = (256,)
    bias: bool = False
    kernel_size: int = 3
    depth: int = 1
    batch_norm: bool = False
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        if len(self.hidden) == 0 and self.kind != "mlp":
            raise ParameterError(f"hidden = () is empty; allowed for kind = {self.kind!r}: one width or more")
        for width in self.hidden:
            check_int("hidden", width)
        check_int("kernel_size", self.kernel_size)
        check_int("depth", self.depth)
        check_positive("norm_eps", self.norm_eps)
        if self.batch_norm and self.kind != "resnet":
            raise ParameterError(
                f"batch_norm = True is not supported for kind = {self.kind!r}; allowed: 'resnet'"
            )

    @property
    def degree(self) -> int | None:
        """The homogeneity degree L of h in all its parameters (module docstring); None when h has biases."""
        if self.bias:
            return None
        layers = len(self.hidden)
        if self.kind in ("mlp", "cnn"):
            return layers + 1
        if self.kind == "vgg":
            return layers * self.depth + 1
        if self.batch_norm:
            return 2
        return 2 + 2 * layers * self.depth + (layers - 1)

    def equivalent_init_scale(self, c: float, eta: float, alpha: float = 1.0) -> tuple[float, float]:
        """(alpha', eta') such that multiplier 1, init scale alpha', step eta' reproduces multiplier c, init scale
        alpha, step eta / c: alpha' = c^(1/L) alpha and eta' = eta c^(2/L - 1) (module docstring)."""
        c, eta, alpha = check_positive("c", c), check_positive("eta", eta), check_positive("alpha", alpha)
        if self.degree is None:
            raise ParameterError(
                f"bias = True makes kind = {self.kind!r} inhomogeneous, so no init scale is equivalent to c; "
                "allowed: bias = False"
            )
        return c ** (1.0 / self.degree) * alpha, eta * c ** (2.0 / self.degree - 1.0)

    def build(self, input_shape: Sequence[int], out_features: int, *, seed: int, alpha: float) -> nn.Module:
        """A float64 network with torch's default initialization drawn from ``seed`` and scaled by ``alpha``.

        The draw uses a forked torch RNG, so the global torch random state is left as it was.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._module(tuple(input_shape), out_features)
        net = net.to(torch.float64)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.mul_(alpha)
        return net

    def _module(self, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
        if self.kind == "mlp":
            return MLP(int(np.prod(input_shape)), self.hidden, out_features, bias=self.bias)
        if self.kind == "cnn":
            return SmallCNN(
                input_shape, self.hidden, out_features, kernel_size=self.kernel_size, bias=self.bias
            )
        if self.kind == "vgg":
            return VGG(input_shape, self.hidden, out_features, depth=self.depth, bias=self.bias)
        return SmallResNet(
            input_shape,
            self.hidden,
            out_features,
            blocks=self.depth,
            bias=self.bias,
            norm_eps=self.norm_eps if self.batch_norm else None,
        )
