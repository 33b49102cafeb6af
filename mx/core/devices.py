"""Devices and streams with MLX's API. Arrays have no device; ops run on a stream."""
from __future__ import annotations

import contextlib
import enum
import os
import threading


class DeviceType(enum.Enum):
    cpu = 0
    gpu = 1

    def __repr__(self):
        return f"DeviceType.{self.name}"


class Device:
    """A device: its type and index, e.g. ``Device(cpu, 0)``."""

    __slots__ = ("type", "index", "_hash")

    def __init__(self, type, index=0):
        if not isinstance(type, DeviceType):
            raise TypeError(f"[Device] type must be a DeviceType, got {type!r}.")
        self.type = type
        self.index = int(index)
        # computed once: every op of a GPU stream looks its device up in a dict, and an
        # enum's .value is slow to read
        self._hash = type.value * 65599 + self.index

    def __repr__(self):
        return f"Device({self.type.name}, {self.index})"

    def __eq__(self, other):
        if isinstance(other, DeviceType):
            return self.type == other
        return isinstance(other, Device) and other.type == self.type and other.index == self.index

    def __hash__(self):
        return self._hash


class Stream:
    """An ordered queue of work on a device."""

    __slots__ = ("device", "index")

    def __init__(self, device, index=0):
        self.device = device
        self.index = index

    def __repr__(self):
        return f"Stream({self.device!r}, {self.index})"

    def __eq__(self, other):
        return isinstance(other, Stream) and other.device == self.device and other.index == self.index

    def __hash__(self):
        return hash((self.device, self.index))


cpu = Device(DeviceType.cpu, 0)
gpu = Device(DeviceType.gpu, 0)

_backends = {}          # DeviceType -> backend object with is_available()/device_count()/info()


def register_backend(kind: DeviceType, backend):
    _backends[kind] = backend


def is_available(device) -> bool:
    """True when `device` (a Device or DeviceType) can run work in this process."""
    kind = device.type if isinstance(device, Device) else device
    if kind == DeviceType.cpu:
        return True
    b = _backends.get(kind)
    return bool(b is not None and b.is_available())


def device_count(device_type) -> int:
    """How many devices of `device_type` there are."""
    kind = device_type.type if isinstance(device_type, Device) else device_type
    if kind == DeviceType.cpu:
        return 1
    b = _backends.get(kind)
    return b.device_count() if b is not None and b.is_available() else 0


def device_info(device=None) -> dict:
    """A dict describing `device` (the default device when None)."""
    device = default_device() if device is None else device
    if isinstance(device, DeviceType):
        device = Device(device, 0)
    if device.type == DeviceType.cpu:
        import platform
        return {"device_name": platform.processor() or platform.machine(),
                "architecture": platform.machine(),
                "cpu_count": os.cpu_count()}
    if not is_available(device):
        raise ValueError(f"[device_info] {device!r} is not available.")
    return _backends[device.type].info(device.index)


class _State(threading.local):
    def __init__(self):
        self.device = cpu
        self.streams = {}       # Device -> default Stream
        self.stack = []


_state = _State()
_stream_counter = [1]
_lock = threading.Lock()


def _check_device(device, op):
    if not is_available(device):
        raise ValueError(f"[{op}] {device!r} is not available: this build/machine has no "
                         f"{device.type.name.upper()} backend.")


def default_device() -> Device:
    """The device ops run on when no stream is given."""
    return _state.device


def set_default_device(device):
    """Make `device` the default for ops without a stream."""
    if isinstance(device, DeviceType):
        device = Device(device, 0)
    if not isinstance(device, Device):
        raise TypeError(f"[set_default_device] Expected a Device, got {device!r}.")
    _check_device(device, "set_default_device")
    _state.device = device


def default_stream(device) -> Stream:
    """The default stream of `device`."""
    if isinstance(device, DeviceType):
        device = Device(device, 0)
    s = _state.streams.get(device)
    if s is None:
        s = _state.streams[device] = Stream(device, 0)
    return s


def new_stream(device) -> Stream:
    """A new stream on `device`."""
    if isinstance(device, DeviceType):
        device = Device(device, 0)
    _check_device(device, "new_stream")
    with _lock:
        idx = _stream_counter[0]
        _stream_counter[0] += 1
    return Stream(device, idx)


def set_default_stream(stream):
    """Make `stream` the default stream of its device and that device the default."""
    if not isinstance(stream, Stream):
        raise TypeError(f"[set_default_stream] Expected a Stream, got {stream!r}.")
    _check_device(stream.device, "set_default_stream")
    _state.streams[stream.device] = stream
    _state.device = stream.device


@contextlib.contextmanager
def stream(s):
    """Within the block, ops without an explicit stream run on `s` (a Stream or Device)."""
    if isinstance(s, DeviceType):
        s = Device(s, 0)
    if isinstance(s, Device):
        _check_device(s, "stream")
        s = default_stream(s)
    if not isinstance(s, Stream):
        raise TypeError(f"[stream] Expected a Stream or Device, got {s!r}.")
    _check_device(s.device, "stream")
    prev_device, prev_stream = _state.device, _state.streams.get(s.device)
    _state.device = s.device
    _state.streams[s.device] = s
    try:
        yield s
    finally:
        _state.device = prev_device
        if prev_stream is None:
            _state.streams.pop(s.device, None)
        else:
            _state.streams[s.device] = prev_stream


def check_stream(s):
    """Validate an op's stream= argument (called only when it is not None)."""
    if isinstance(s, Stream):
        _check_device(s.device, "stream")
    elif isinstance(s, Device):
        _check_device(s, "stream")
    elif isinstance(s, DeviceType):
        _check_device(Device(s, 0), "stream")
    else:
        raise TypeError(f"stream must be a Stream, a Device or None; got {type(s).__name__}.")


def synchronize(stream=None):
    """Wait until all work queued on `stream` (all streams when None) has finished."""
    from mx.core._scheduler import synchronize_all
    if stream is not None and not isinstance(stream, (Stream, Device)):
        raise TypeError(f"[synchronize] Expected a Stream, got {stream!r}.")
    synchronize_all()
