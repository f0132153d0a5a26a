"""Where and in what precision the training engines compute: one code path for ``cpu`` and ``cuda``.

Every engine turns its inputs into tensors through one :class:`Placement` (a device and a dtype), so the CPU and
GPU runs differ only in that object. Conventions:

- dtype ``float64`` by default (docs/design.md section 6); ``float32`` is allowed on either device.
- Random draws (minibatch orders) always come from CPU generators and are then moved to the device, so a seed
  gives the same minibatches on every device. On the CPU a run is deterministic for a seed and a thread count
  (results can differ in the last bits between thread counts, because the matrix-product blocking changes). On
  CUDA, results agree with the CPU to rounding, not bit for bit.
- Threads: library calls never change torch's thread count. Scripts call :func:`configure_threads`, whose
  default is :data:`DEFAULT_THREADS` (one thread: on a small CPU, small tensor ops run far faster single-threaded)
  unless the environment variable ``FLS_TORCH_THREADS`` says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fls.theory.validation import ParameterError, check_choice, check_int

#: Thread count :func:`configure_threads` uses when neither its argument nor ``FLS_TORCH_THREADS`` is set.
DEFAULT_THREADS = 1
THREADS_ENV = "FLS_TORCH_THREADS"
#: The dtypes the engines accept, by name.
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEVICE_TYPES = ("cpu", "cuda")


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count to ``threads``, else ``$FLS_TORCH_THREADS``, else :data:`DEFAULT_THREADS`.

    Returns the count set. Meant for entry points (benchmarks, figure scripts, the CLI), not for library code.
    """
    if threads is None:
        raw = os.environ.get(THREADS_ENV)
        if raw is None:
            threads = DEFAULT_THREADS
        else:
            try:
                threads = int(raw)
            except ValueError as exc:
                raise ParameterError(
                    f"{THREADS_ENV} = {raw!r} is not an integer; allowed: integers >= 1"
                ) from exc
    torch.set_num_threads(check_int("threads", threads))
    return int(threads)


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """The torch device named by ``device`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``), checked to be usable here.

    Asking for CUDA on a machine without it raises :class:`ParameterError` saying so, rather than failing later
    inside a kernel.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(
            f"device = {device!r} is not a device name; allowed: 'cpu', 'cuda', 'cuda:N'"
        ) from exc
    check_choice("device", resolved.type, DEVICE_TYPES)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device = {str(device)!r} is not available: torch {torch.__version__} reports no usable CUDA "
                "device (torch.cuda.is_available() is False); allowed here: 'cpu'"
            )
        count = torch.cuda.device_count()
        index = 0 if resolved.index is None else resolved.index
        if index >= count:
            raise ParameterError(
                f"device = {str(device)!r} is out of range; allowed: 'cuda:0' ... 'cuda:{count - 1}'"
            )
        resolved = torch.device("cuda", index)
    return resolved


def resolve_dtype(dtype: str | torch.dtype = "float64") -> torch.dtype:
    """The torch floating dtype named by ``dtype`` (``"float64"``, ``"float32"`` or the torch dtype itself)."""
    if isinstance(dtype, torch.dtype):
        names = {value: key for key, value in DTYPES.items()}
        return DTYPES[check_choice("dtype", names.get(dtype, str(dtype)), DTYPES)]
    return DTYPES[check_choice("dtype", dtype, DTYPES)]


@dataclass(frozen=True)
class Placement:
    """A device and a dtype: the one place where engine inputs become tensors."""

    device: torch.device
    dtype: torch.dtype

    def tensor(self, value: Any) -> torch.Tensor:
        """``value`` (array, tensor or scalar) as a floating tensor on this device, in this dtype."""
        if isinstance(value, torch.Tensor):
            return value.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(value, dtype=np.float64), device=self.device).to(self.dtype)

    def index(self, value: Any) -> torch.Tensor:
        """``value`` as an int64 tensor on this device (sample indices, labels, step counts)."""
        if isinstance(value, torch.Tensor):
            return value.to(device=self.device, dtype=torch.int64)
        return torch.as_tensor(np.asarray(value, dtype=np.int64), device=self.device)

    def describe(self) -> dict[str, str]:
        """Device and dtype as strings, for a run record."""
        return {"device": str(self.device), "dtype": str(self.dtype).removeprefix("torch.")}


def placement(device: str | torch.device = "cpu", dtype: str | torch.dtype = "float64") -> Placement:
    """A checked :class:`Placement` for ``device`` and ``dtype`` (see :func:`resolve_device`, :func:`resolve_dtype`)."""
    return Placement(resolve_device(device), resolve_dtype(dtype))
