"""The interface a communication backend implements, the singleton backend, and the
environment a launcher leaves behind (how many processes it started, the timeout).

A backend object stands for one communicator: the processes of one `Group`. The kernels
of the distributed primitives call its methods on NumPy arrays (C-contiguous, at least
one-dimensional where the method says so) and expect NumPy arrays back. A new backend
(NCCL for GPUs is the planned one) subclasses `Backend` and is made known with
`mx.core.distributed.register_backend`.
"""
from __future__ import annotations

import abc
import math
import os

import numpy as np

# Variables through which launchers announce the number of processes they started:
# mx.launch, Open MPI's mpirun, MPICH/Intel MPI (Hydra, also Slurm's PMI), MVAPICH.
LAUNCH_SIZE_VARS = ("MX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")

TIMEOUT_VAR = "MX_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 300.0


def launched_size():
    """(number of processes a launcher says it started, the variable saying so), or
    (None, None) when no launcher variable is set."""
    for var in LAUNCH_SIZE_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return int(value), var
            except ValueError:
                continue
    return None, None


def timeout_seconds():
    """How long a process waits for its peers in one communication before raising
    (MX_DISTRIBUTED_TIMEOUT, seconds; 0, a negative number, "none" or "inf" wait forever)."""
    raw = os.environ.get(TIMEOUT_VAR, "").strip().lower()
    if not raw:
        return DEFAULT_TIMEOUT
    if raw in ("none", "inf", "infinity", "never"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"[distributed] {TIMEOUT_VAR}={raw!r} is not a number of seconds.") from None
    if value <= 0 or math.isinf(value):
        return None
    return value


class Backend(abc.ABC):
    """One communicator. Subclasses implement every method; `name`, `rank` and `size` are
    plain attributes. Reductions keep the input's dtype; `op` is "sum", "max" or "min"."""

    name = "base"
    rank = 0
    size = 1

    @abc.abstractmethod
    def split(self, color: int, key: int) -> "Backend":
        """The communicator of the processes that passed the same color, ordered by key."""

    @abc.abstractmethod
    def all_reduce(self, x: np.ndarray, op: str, out: np.ndarray | None = None) -> np.ndarray:
        """The elementwise reduction of every process's x; `out`, when given, is x's own
        buffer (the scheduler donated it), which then receives the result."""

    @abc.abstractmethod
    def all_gather(self, x: np.ndarray) -> np.ndarray:
        """The x of every process concatenated along axis 0 (x is at least 1-d)."""

    @abc.abstractmethod
    def sum_scatter(self, x: np.ndarray) -> np.ndarray:
        """This process's 1/size slice (along axis 0) of the sum of every process's x."""

    @abc.abstractmethod
    def send(self, x: np.ndarray, dst: int) -> None:
        """Hand x to process `dst`; may return before `dst` received it (x is immutable)."""

    @abc.abstractmethod
    def recv(self, shape: tuple, dtype: np.dtype, src: int) -> np.ndarray:
        """The array process `src` sent (it must have this shape and dtype)."""


class SingletonBackend(Backend):
    """A group of one process (no communication library): the collectives are identities,
    which the op functions apply without building a node."""

    name = "singleton"
    rank = 0
    size = 1

    def split(self, color, key):
        raise RuntimeError("Cannot split the distributed group further.")

    def all_reduce(self, x, op, out=None):
        return x

    def all_gather(self, x):
        return x

    def sum_scatter(self, x):
        return x

    def send(self, x, dst):
        raise ValueError("Cannot send to a singleton group")

    def recv(self, shape, dtype, src):
        raise ValueError("Cannot recv from a singleton group")
