"""Saving and loading arrays: .npy, .npz, .safetensors and .gguf.

Saving writes a temporary file next to the target and renames it over the target only once
it is complete, so a failed save never leaves a partial file (nor harms an existing one).
Computed arrays are evaluated together first; arrays still lazily loaded from a file are
read one at a time while writing, so converting between formats holds one tensor at once.

Loading from a path is lazy: `load` reads and checks the file's header and returns arrays
that are unevaluated nodes; each node's kernel reads its own bytes when it is evaluated.
The loaded arrays keep the file open, so they still read the data they were loaded from if
the path is replaced later. Loading from a file object reads it at once.
"""
from __future__ import annotations

import ast
import copy
import io as _pyio
import json
import mmap
import os
import struct
import tempfile
import threading
import zipfile
import zlib
from contextlib import contextmanager

import ml_dtypes
import numpy as np

from mx.core._array import array, make_node, shape_str, wrap
from mx.core.dtypes import (bfloat16, bool_, complex64, float16, float32, float64, int8, int16,
                            int32, int64, uint8, uint16, uint32, uint64)
from mx.core.primitives import declare

_BF16 = np.dtype(ml_dtypes.bfloat16)

# mx dtype name -> (mx dtype, NumPy dtype)
_DTYPES = {d.name: (d, d.np) for d in (bool_, uint8, uint16, uint32, uint64, int8, int16,
                                        int32, int64, float16, bfloat16, float32, float64,
                                        complex64)}


class _CorruptFileError(ValueError, RuntimeError):
    """A file that is truncated or not in the format it claims (a ValueError; also a
    RuntimeError, which is what MLX raises)."""


class _MissingFileError(FileNotFoundError, RuntimeError):
    """A file that does not exist (MLX raises RuntimeError)."""

    def __str__(self):
        return f"[load] Failed to open file {self.filename}: {self.strerror}"


def _corrupt(name, what):
    return _CorruptFileError(f"[load] {name}: {what}")


# ---------------------------------------------------------------------------------------
# where bytes come from
# ---------------------------------------------------------------------------------------
class _FileSource:
    """An open file that lazily loaded arrays read from (positional reads, so arrays can be
    evaluated in any order and from any thread)."""

    def __init__(self, path):
        self.name = path
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            raise _MissingFileError(2, "No such file or directory", path) from None
        self.size = os.fstat(self.fd).st_size
        self.lock = threading.Lock()

    def __del__(self):
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)

    def _pread(self, n, offset):
        if hasattr(os, "pread"):
            return os.pread(self.fd, n, offset)
        with self.lock:
            os.lseek(self.fd, offset, os.SEEK_SET)
            return os.read(self.fd, n)

    def read(self, offset, n):
        """n bytes at offset (fewer only at the end of the file)."""
        parts = []
        while n > 0:
            chunk = self._pread(min(n, 1 << 30), offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def read_into(self, buf, offset):
        """Fill the uint8 array `buf` from offset, straight into its memory."""
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view):
            if hasattr(os, "preadv"):
                got = os.preadv(self.fd, [view[done:done + (1 << 30)]], offset + done)
            else:
                chunk = self._pread(min(len(view) - done, 1 << 30), offset + done)
                got = len(chunk)
                view[done:done + got] = chunk
            if got == 0:
                raise _corrupt(self.name, f"the file ended after {offset + done} bytes while "
                                          f"reading {len(view)} bytes at offset {offset} (was "
                                          "it truncated after loading?)")
            done += got

    def open(self):
        """A binary file object on the same open file (for zipfile)."""
        return os.fdopen(os.dup(self.fd), "rb")

    def buffer(self):
        """The whole file as a read-only buffer (for parsing large headers)."""
        if self.size == 0:
            return b""
        return mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)


class _MemorySource:
    """The contents of a file object, read when it was loaded."""

    def __init__(self, data, name):
        self.data = data
        self.name = name
        self.size = len(data)

    def read(self, offset, n):
        return bytes(self.data[offset:offset + n])

    def open(self):
        return _pyio.BytesIO(self.data)

    def buffer(self):
        return self.data

    def array(self, offset, dtype, shape):
        """A read-only view of the stored array (no copy)."""
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            return np.empty(shape, dtype)
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=offset).reshape(shape)


def _open_source(file, op="load"):
    if isinstance(file, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(file))
        if os.path.isdir(path):
            raise IsADirectoryError(21, f"[load] {path} is a directory", path)
        if os.path.exists(path) and not os.path.isfile(path):
            # a pipe or device cannot be read lazily: take its contents now
            with open(path, "rb") as f:
                return _MemorySource(f.read(), path)
        return _FileSource(path)
    if hasattr(file, "read"):
        data = file.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"[{op}] The file object must be opened in binary mode.")
        return _MemorySource(bytes(data), getattr(file, "name", "<file object>"))
    raise TypeError(f"[{op}] file must be a str, a pathlib.Path or a binary file object; got "
                    f"{type(file).__name__}.")


# ---------------------------------------------------------------------------------------
# the lazy read primitive
# ---------------------------------------------------------------------------------------
def _gguf_dequantize(raw, gtype):
    """GGML block-quantized bytes to float16 values (Q8_0, Q4_0, Q4_1: blocks of 32)."""
    if gtype == 8:  # Q8_0: f16 scale, 32 int8
        blocks = raw.reshape(-1, 34)
        d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        q = blocks[:, 2:].view(np.int8).astype(np.float32)
        return (q * d).astype(np.float16)
    if gtype == 2:  # Q4_0: f16 scale, 16 bytes of nibbles, value (nibble - 8) * scale
        blocks = raw.reshape(-1, 18)
        d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        qs = blocks[:, 2:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        return (q * d).astype(np.float16)
    # Q4_1: f16 scale, f16 minimum, 16 bytes of nibbles, value nibble * scale + minimum
    blocks = raw.reshape(-1, 20)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    return (q * d + m).astype(np.float16)


def _file_shape(shape, layout):
    return tuple(reversed(shape)) if layout == "fortran" else shape


def _finish(out, layout):
    """An array read in the file's layout, in mx's (C order, native byte order)."""
    if layout == "fortran":
        return np.ascontiguousarray(out.T)
    if layout == "swap":
        return out.byteswap().view(out.dtype.newbyteorder("="))
    return out


def _read_kernel(*, source, offset, shape, dtype, layout, nbytes):
    """Read one array's bytes from `source`. layout: "c" (C order, native byte order),
    "swap" (byte-swapped), "fortran", or ("gguf", type) for quantized blocks."""
    if isinstance(layout, tuple):
        raw = np.empty(nbytes, np.uint8)
        source.read_into(raw, offset)
        return _gguf_dequantize(raw, layout[1]).reshape(shape)
    out = np.empty(_file_shape(shape, layout), dtype)
    if out.nbytes:
        source.read_into(out.reshape(-1).view(np.uint8), offset)
    return _finish(out, layout)


def _read_member(m, shape, dtype, layout, name, member):
    """The array data that follows the .npy header in the open zip member `m`."""
    out = np.empty(_file_shape(shape, layout), dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        got = m.readinto(view[done:])
        if not got:
            raise _corrupt(name, f"member {member} ends early")
        done += got
    return _finish(out, layout)


def _zip_kernel(*, source, member, shape, dtype, layout, nbytes):
    """Read one compressed .npz member (the zip is opened on the loaded file itself)."""
    try:
        with source.lock, source.open() as f, zipfile.ZipFile(f) as zf, zf.open(member) as m:
            _read_npy_header(m.read, source.name)
            return _read_member(m, shape, dtype, layout, source.name, member)
    except _ZIP_ERRORS as e:
        raise _corrupt(source.name, f"member {member} cannot be read: {e}") from None


READ = declare("load", cpu=_read_kernel, doc="read an array's bytes from a loaded file")
READ_ZIP = declare("load_npz_member", cpu=_zip_kernel,
                   doc="read and decompress one member of a loaded .npz file")


def _tensor(source, offset, shape, np_dtype, mx_dtype, stream, layout="c", nbytes=None):
    """The array stored at `offset`: a lazy node for files, a view for file objects."""
    shape = tuple(int(s) for s in shape)
    if nbytes is None:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
    if isinstance(source, _MemorySource):
        if isinstance(layout, tuple):
            raw = source.array(offset, np.dtype(np.uint8), (nbytes,))
            return wrap(_gguf_dequantize(raw, layout[1]).reshape(shape), mx_dtype)
        return wrap(_finish(source.array(offset, np_dtype, _file_shape(shape, layout)), layout),
                    mx_dtype)
    params = {"source": source, "offset": offset, "shape": shape, "dtype": np_dtype,
              "layout": layout, "nbytes": nbytes}
    return make_node(READ, (), params, shape, mx_dtype, stream)


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def _umask():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextmanager
def _atomic_write(path):
    """A binary file object whose contents replace `path` only if the block completes."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def _output(file, ext, op):
    """Where a save writes: a path (given `ext` unless it ends with it) written atomically,
    or a writable binary file object written in place."""
    if isinstance(file, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(file))
        if not path.endswith(ext):
            path += ext
        with _atomic_write(path) as f:
            yield f
    elif hasattr(file, "write"):
        yield file
    else:
        raise TypeError(f"[{op}] file must be a str, a pathlib.Path or a writable binary file "
                        f"object; got {type(file).__name__}.")


def _prepare(arrays, op):
    """Check that every value is an mx array and evaluate the computed ones (together, so
    shared work is done once). Arrays still lazily loaded from a file are left for
    `_data_of`, which reads them one at a time: converting a model between formats then
    needs memory for one tensor, not all of them."""
    from mx.core.evaluation import eval as mx_eval
    for a in arrays:
        if not isinstance(a, array):
            raise TypeError(f"[{op}] Expected an mx array to save, got {type(a).__name__}.")
    todo = [a for a in arrays if a._prim is not None and a._prim not in (READ, READ_ZIP)]
    if todo:
        mx_eval(*todo)


def _data_of(a):
    """The C-contiguous NumPy data of `a` (a lazily loaded array is read into a temporary
    that is dropped after writing; the array itself stays unevaluated)."""
    from mx.core.evaluation import eval as mx_eval
    if a._prim is READ or a._prim is READ_ZIP:
        a = copy.copy(a)
        mx_eval(a)
    # (np.ascontiguousarray would turn 0-d arrays into 1-d ones)
    return np.require(np.asarray(a), requirements="C")


def _nbytes_of(a):
    return a.size * a.dtype.size


def _raw(data):
    """The bytes of a C-contiguous array without copying."""
    return memoryview(data.reshape(-1).view(np.uint8))


# -- npy / npz ----------------------------------------------------------------------------
def _npy_descr(data):
    if data.dtype == _BF16:
        # what NumPy and MLX write for bfloat16; read back as bfloat16
        return "<V2"
    return np.lib.format.dtype_to_descr(data.dtype)


def _npy_header(data):
    shape = "(" + "".join(f"{s}, " for s in data.shape).rstrip(" ") + ")" if data.ndim != 1 \
        else f"({data.shape[0]},)"
    text = f"{{'descr': '{_npy_descr(data)}', 'fortran_order': False, 'shape': {shape}, }}"
    body = text.encode("latin1")
    for version, size_fmt in ((1, "<H"), (2, "<I")):
        prefix = 6 + 2 + struct.calcsize(size_fmt)
        total = prefix + len(body) + 1
        pad = (-total) % 64
        hlen = len(body) + pad + 1
        if size_fmt == "<H" and hlen >= 1 << 16:
            continue
        return (b"\x93NUMPY" + bytes([version, 0]) + struct.pack(size_fmt, hlen) + body +
                b" " * pad + b"\n")
    raise ValueError("[save] The array's .npy header is too large.")


def _write_npy(f, data):
    f.write(_npy_header(data))
    if data.size:
        f.write(_raw(data))


def save(file, arr):
    """Save one array to a binary ``.npy`` file (".npy" is appended to a path without it).

    `file` is a path (str or pathlib.Path) or a writable binary file object. bfloat16 arrays
    are stored as 2-byte void ("<V2"), as NumPy and MLX do; mx.load reads them back as
    bfloat16.
    """
    if not isinstance(arr, array):
        raise TypeError(f"[save] Expected an mx array to save, got {type(arr).__name__}.")
    _prepare([arr], "save")
    data = _data_of(arr)
    with _output(file, ".npy", "save") as f:
        _write_npy(f, data)


def _savez(file, args, kwargs, compression, op):
    named = {}
    for i, a in enumerate(args):
        named[f"arr_{i}"] = a
    for k, a in kwargs.items():
        if k in named:
            raise ValueError(f"[{op}] Cannot use un-named variables and keyword {k}.")
        named[k] = a
    names = list(named)
    _prepare([named[k] for k in names], op)
    with _output(file, ".npz", op) as f:
        with zipfile.ZipFile(f, "w", compression=compression, allowZip64=True) as zf:
            for name in names:
                data = _data_of(named[name])
                with zf.open(name + ".npy", "w", force_zip64=True) as m:
                    _write_npy(m, data)
                del data


def savez(file, *args, **kwargs):
    """Save several arrays to an uncompressed ``.npz`` archive (".npz" is appended to a path
    without it). Positional arrays are named arr_0, arr_1, ...; keyword arrays by their
    keyword. np.load reads the result."""
    _savez(file, args, kwargs, zipfile.ZIP_STORED, "savez")


def savez_compressed(file, *args, **kwargs):
    """Like savez, but the archive's members are deflate-compressed."""
    _savez(file, args, kwargs, zipfile.ZIP_DEFLATED, "savez_compressed")


# -- safetensors --------------------------------------------------------------------------
_ST_NAMES = {"bool": "BOOL", "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64",
             "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64", "float16": "F16",
             "bfloat16": "BF16", "float32": "F32", "float64": "F64", "complex64": "C64"}
_ST_DTYPES = {v: k for k, v in _ST_NAMES.items()}


def _check_named_arrays(arrays, op):
    if not isinstance(arrays, dict):
        raise TypeError(f"[{op}] arrays must be a dict from str to array, got "
                        f"{type(arrays).__name__}.")
    for k, a in arrays.items():
        if not isinstance(k, str):
            raise TypeError(f"[{op}] Array names must be strings, got {type(k).__name__}.")
        if not isinstance(a, array):
            raise TypeError(f"[{op}] The value for '{k}' must be an mx array, got "
                            f"{type(a).__name__}.")


def save_safetensors(file, arrays, metadata=None):
    """Save a dict of named arrays to a ``.safetensors`` file (".safetensors" is appended to
    a path without it), with optional str -> str `metadata`. Every mx dtype is stored
    (bfloat16 as "BF16")."""
    op = "save_safetensors"
    _check_named_arrays(arrays, op)
    if "__metadata__" in arrays:
        raise ValueError(f"[{op}] '__metadata__' is reserved and cannot name an array.")
    if metadata is not None and (not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ValueError(f"[{op}] Metadata must be a dictionary with string keys and values")
    names = sorted(arrays)
    _prepare([arrays[k] for k in names], op)
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in names:
        a = arrays[name]
        header[name] = {"dtype": _ST_NAMES[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + _nbytes_of(a)]}
        offset += _nbytes_of(a)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)   # the format asks for an 8-byte aligned data section
    with _output(file, ".safetensors", op) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in names:
            data = _data_of(arrays[name])
            if data.size:
                f.write(_raw(data))
            del data


# -- gguf ---------------------------------------------------------------------------------
_GGUF_MAGIC = b"GGUF"
_GGUF_ALIGNMENT = 32
# GGML tensor types mx stores directly
_GGML_TYPES = {"float32": 0, "float16": 1, "int8": 24, "int16": 25, "int32": 26, "int64": 27,
               "float64": 28, "bfloat16": 30}
_GGML_DTYPES = {v: k for k, v in _GGML_TYPES.items()}
# block-quantized types mx dequantizes to float16: type -> (block bytes, block values)
_GGML_QUANT = {2: (18, 32), 3: (20, 32), 8: (34, 32)}
_GGML_NAMES = {2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
               11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K"}
# GGUF metadata value types
_GV_UINT8, _GV_INT8, _GV_UINT16, _GV_INT16, _GV_UINT32, _GV_INT32, _GV_FLOAT32 = range(7)
_GV_BOOL, _GV_STRING, _GV_ARRAY, _GV_UINT64, _GV_INT64, _GV_FLOAT64 = range(7, 13)
_GV_FROM_MX = {"uint8": _GV_UINT8, "int8": _GV_INT8, "uint16": _GV_UINT16, "int16": _GV_INT16,
               "uint32": _GV_UINT32, "int32": _GV_INT32, "float32": _GV_FLOAT32,
               "bool": _GV_BOOL, "uint64": _GV_UINT64, "int64": _GV_INT64,
               "float64": _GV_FLOAT64}
_GV_TO_MX = {v: k for k, v in _GV_FROM_MX.items()}


def _gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _gguf_value(key, v, op):
    """(value type, encoded value) of one metadata entry."""
    if key == "general.alignment":
        # readers expect this one as a uint32 (validated by _gguf_alignment)
        return _GV_UINT32, struct.pack("<I", int(v.item()))
    if isinstance(v, str):
        return _GV_STRING, _gguf_str(v)
    if isinstance(v, (list, tuple)):
        if not all(isinstance(s, str) for s in v):
            raise TypeError(f"[{op}] Metadata '{key}': a list must hold only strings.")
        return _GV_ARRAY, struct.pack("<IQ", _GV_STRING, len(v)) + b"".join(map(_gguf_str, v))
    if isinstance(v, array):
        if v.ndim > 1:
            raise ValueError(f"[{op}] Cannot save arrays with more than one dimension "
                             f"(metadata '{key}' has shape {shape_str(v.shape)}).")
        vt = _GV_FROM_MX.get(v.dtype.name)
        if vt is None:
            raise ValueError(f"[{op}] array type {v.dtype.name} not supported for metadata "
                             f"('{key}').")
        data = np.ascontiguousarray(np.asarray(v)).astype(v.dtype.np.newbyteorder("<"))
        if v.ndim == 0:
            return vt, data.tobytes()
        return _GV_ARRAY, struct.pack("<IQ", vt, data.size) + data.tobytes()
    raise TypeError(f"[{op}] Metadata '{key}' must be an array, a str or a list of str; got "
                    f"{type(v).__name__}.")


def _gguf_alignment(metadata, op):
    v = metadata.get("general.alignment")
    if v is None:
        return _GGUF_ALIGNMENT
    if not (isinstance(v, array) and v.ndim == 0 and v.dtype.name in
            ("uint8", "uint16", "uint32", "int32", "uint64", "int64")):
        raise ValueError(f"[{op}] general.alignment must be an integer scalar array.")
    n = int(v.item())
    if n <= 0 or n % 8:
        raise ValueError(f"[{op}] general.alignment must be a positive multiple of 8, got {n}.")
    return n


def save_gguf(file, arrays, metadata=None):
    """Save a dict of named arrays to a ``.gguf`` file (GGUF version 3; ".gguf" is appended to
    a path without it).

    Tensors may be float32, float16, bfloat16, float64, int8, int16, int32 or int64. Metadata
    values are scalar or 1-D arrays (bool, (u)int8-64, float32, float64), strings, or lists
    of strings. Data is aligned to 32 bytes, or to `metadata["general.alignment"]`.
    """
    op = "save_gguf"
    _check_named_arrays(arrays, op)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise TypeError(f"[{op}] metadata must be a dict, got {type(metadata).__name__}.")
    for name, a in arrays.items():
        if a.dtype.name not in _GGML_TYPES:
            raise ValueError(f"[{op}] dtype {a.dtype.name} is not supported (array '{name}'); "
                             "GGUF stores float32, float16, bfloat16, float64 and int8-int64.")
    align = _gguf_alignment(metadata, op)
    kv = []
    for key, v in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"[{op}] Metadata keys must be strings, got {type(key).__name__}.")
        vt, encoded = _gguf_value(key, v, op)
        kv.append(_gguf_str(key) + struct.pack("<I", vt) + encoded)
    names = list(arrays)
    _prepare([arrays[k] for k in names], op)
    infos = []
    offset = 0
    for name in names:
        a = arrays[name]
        dims = tuple(reversed(a.shape))
        infos.append(_gguf_str(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims,
                                                   _GGML_TYPES[a.dtype.name], offset))
        offset += _nbytes_of(a) + (-_nbytes_of(a)) % align
    head = (_GGUF_MAGIC + struct.pack("<IQQ", 3, len(names), len(kv)) + b"".join(kv) +
            b"".join(infos))
    head += b"\x00" * ((-len(head)) % align)
    with _output(file, ".gguf", op) as f:
        f.write(head)
        for name in names:
            data = _data_of(arrays[name])
            if data.size:
                f.write(_raw(data))
            f.write(b"\x00" * ((-data.nbytes) % align))
            del data


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
def _np_to_mx(npd, name, what):
    """The mx dtype for a stored NumPy dtype (native byte order)."""
    for d, n in _DTYPES.values():
        if n == npd:
            return d
    raise _corrupt(name, f"{what} has dtype {npd}, which mx arrays cannot hold")


def _read_npy_header(read, name):
    """Parse an .npy header from the stream `read`; returns (dtype, shape, layout, size of
    the header in bytes)."""
    magic = read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise _corrupt(name, "not an .npy file (bad magic string)")
    major = magic[6]
    if major == 1:
        fmt = "<H"
    elif major in (2, 3):
        fmt = "<I"
    else:
        raise _corrupt(name, f"unsupported .npy format version {major}.{magic[7]}")
    raw = read(struct.calcsize(fmt))
    if len(raw) < struct.calcsize(fmt):
        raise _corrupt(name, "truncated .npy header")
    (hlen,) = struct.unpack(fmt, raw)
    text = read(hlen)
    if len(text) < hlen:
        raise _corrupt(name, "truncated .npy header")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        raise _corrupt(name, "malformed .npy header") from None
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise _corrupt(name, f"malformed .npy shape {shape!r}")
    if descr in ("<V2", "|V2"):
        dtype = _BF16
    else:
        try:
            dtype = np.dtype(descr)
        except (TypeError, ValueError):
            raise _corrupt(name, f"unsupported .npy dtype {descr!r}") from None
    if dtype.kind == "O" or dtype.fields is not None or dtype.subdtype is not None:
        raise _corrupt(name, f"unsupported .npy dtype {descr!r} (mx does not load object or "
                             "structured arrays)")
    layout = "fortran" if fortran and len(shape) > 1 else "c"
    if not dtype.isnative:
        if fortran:
            raise _corrupt(name, "byte-swapped Fortran-order .npy files are not supported")
        layout = "swap"
    return dtype, shape, layout, len(magic) + len(raw) + hlen


def _nbytes(shape, itemsize):
    n = itemsize
    for s in shape:
        n *= s
    return n


def _load_npy(source, stream):
    dtype, shape, layout, hsize = _read_npy_header(_reader_at(source, 0), source.name)
    mx_dtype = _np_to_mx(dtype.newbyteorder("=") if layout == "swap" else dtype, source.name,
                         "the array")
    nbytes = _nbytes(shape, dtype.itemsize)
    if hsize + nbytes > source.size:
        raise _corrupt(source.name, f"truncated: the array needs {nbytes} bytes of data but the "
                                    f"file has {source.size - hsize}")
    return _tensor(source, hsize, shape, dtype, mx_dtype, stream, layout)


def _zip_data_offset(source, info):
    """Where a stored (uncompressed) member's bytes start in the file."""
    local = source.read(info.header_offset, 30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise _corrupt(source.name, f"bad zip entry for {info.filename}")
    n, m = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + n + m


def _reader_at(source, start):
    """A read(n) function over `source` starting at byte `start`."""
    pos = [start]

    def read(n):
        b = source.read(pos[0], n)
        pos[0] += len(b)
        return b

    return read


def _npz_stored(source, info, key, stream):
    """An uncompressed member: a plain read at its offset in the file."""
    start = _zip_data_offset(source, info)
    dtype, shape, layout, hsize = _read_npy_header(_reader_at(source, start), source.name)
    mx_dtype = _np_to_mx(dtype.newbyteorder("=") if layout == "swap" else dtype, source.name,
                         f"member {key}")
    nbytes = _nbytes(shape, dtype.itemsize)
    if hsize + nbytes > info.file_size or start + hsize + nbytes > source.size:
        raise _corrupt(source.name, f"truncated member {info.filename}")
    return _tensor(source, start + hsize, shape, dtype, mx_dtype, stream, layout)


def _npz_compressed(source, zf, info, key, stream):
    """A deflated member: its header now, its data decompressed when evaluated."""
    with zf.open(info) as m:
        dtype, shape, layout, _ = _read_npy_header(m.read, source.name)
        mx_dtype = _np_to_mx(dtype.newbyteorder("=") if layout == "swap" else dtype,
                             source.name, f"member {key}")
        if isinstance(source, _MemorySource):
            return wrap(_read_member(m, shape, dtype, layout, source.name, info.filename),
                        mx_dtype)
    params = {"source": source, "member": info.filename, "shape": tuple(shape), "dtype": dtype,
              "layout": layout, "nbytes": _nbytes(shape, dtype.itemsize)}
    return make_node(READ_ZIP, (), params, tuple(shape), mx_dtype, stream)


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError)


def _load_npz(source, stream):
    out = {}
    try:
        with source.open() as f, zipfile.ZipFile(f) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise _corrupt(source.name, f"member {info.filename!r} is not an .npy array")
                key = info.filename[:-4]
                if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
                    out[key] = _npz_stored(source, info, key, stream)
                else:
                    out[key] = _npz_compressed(source, zf, info, key, stream)
    except _ZIP_ERRORS as e:
        raise _corrupt(source.name, f"not a valid .npz (zip) file: {e}") from None
    return out


def _load_safetensors(source, stream):
    name = source.name
    if source.size < 8:
        raise _corrupt(name, f"truncated: a .safetensors file starts with an 8-byte header "
                             f"size, but the file has {source.size} bytes")
    (n,) = struct.unpack("<Q", source.read(0, 8))
    if n > source.size - 8:
        raise _corrupt(name, f"truncated: the JSON header is {n} bytes long but the file has "
                             f"only {source.size - 8} bytes after the size field")
    try:
        header = json.loads(source.read(8, n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _corrupt(name, "the JSON header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(name, "the JSON header is not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _corrupt(name, "__metadata__ must map strings to strings")
    base = 8 + n
    out = {}
    for key, info in header.items():
        try:
            st_dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            shape = tuple(shape)
            ok = all(isinstance(s, int) and s >= 0 for s in shape) and \
                isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise _corrupt(name, f"malformed entry for tensor '{key}'")
        if st_dtype not in _ST_DTYPES:
            raise _corrupt(name, f"tensor '{key}' has dtype {st_dtype}, which mx does not "
                                 "support")
        mx_dtype, np_dtype = _DTYPES[_ST_DTYPES[st_dtype]]
        nbytes = _nbytes(shape, np_dtype.itemsize)
        if end - begin != nbytes:
            raise _corrupt(name, f"tensor '{key}' of shape {shape_str(shape)} and dtype "
                                 f"{st_dtype} needs {nbytes} bytes but its data offsets "
                                 f"({begin}, {end}) span {end - begin}")
        if base + end > source.size:
            raise _corrupt(name, f"truncated: tensor '{key}' has data offsets ({begin}, {end}) "
                                 f"beyond the end of the file ({source.size} bytes)")
        out[key] = _tensor(source, base + begin, shape, np_dtype, mx_dtype, stream)
    return out, metadata


class _Cursor:
    """Bounds-checked little-endian reads from a GGUF header."""

    def __init__(self, buf, name):
        self.buf = buf
        self.pos = 0
        self.name = name
        self.size = len(buf)

    def take(self, fmt):
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise _corrupt(self.name, f"truncated GGUF header at byte {self.pos}")
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v if len(v) > 1 else v[0]

    def string(self):
        n = self.take("<Q")
        if self.pos + n > self.size:
            raise _corrupt(self.name, f"truncated GGUF string at byte {self.pos}")
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b.decode("utf-8", errors="replace")

    def raw(self, n):
        if self.pos + n > self.size:
            raise _corrupt(self.name, f"truncated GGUF header at byte {self.pos}")
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b


_GV_SIZES = {_GV_UINT8: 1, _GV_INT8: 1, _GV_UINT16: 2, _GV_INT16: 2, _GV_UINT32: 4,
             _GV_INT32: 4, _GV_FLOAT32: 4, _GV_BOOL: 1, _GV_UINT64: 8, _GV_INT64: 8,
             _GV_FLOAT64: 8}


def _gguf_read_value(cur, vt, depth=0):
    if vt == _GV_STRING:
        return cur.string()
    if vt in _GV_SIZES:
        d, npd = _DTYPES[_GV_TO_MX[vt]]
        data = np.frombuffer(cur.raw(_GV_SIZES[vt]), npd.newbyteorder("<")).astype(npd)
        return wrap(data.reshape(()), d)
    if vt == _GV_ARRAY and depth < 8:
        et, count = cur.take("<IQ")
        if et in _GV_SIZES:
            d, npd = _DTYPES[_GV_TO_MX[et]]
            raw = cur.raw(count * _GV_SIZES[et])
            return wrap(np.frombuffer(raw, npd.newbyteorder("<")).astype(npd), d)
        if count > cur.size:
            raise _corrupt(cur.name, "GGUF array longer than the file")
        return [_gguf_read_value(cur, et, depth + 1) for _ in range(count)]
    raise _corrupt(cur.name, f"unknown GGUF metadata value type {vt}")


def _parse_gguf_header(buf, name):
    """(metadata, tensor infos (name, shape, type, offset), data section start)."""
    cur = _Cursor(buf, name)
    if cur.size < 4 or cur.raw(4) != _GGUF_MAGIC:
        raise _corrupt(name, "not a GGUF file (bad magic)")
    version = cur.take("<I")
    if version not in (2, 3):
        raise _corrupt(name, f"unsupported GGUF version {version}")
    n_tensors, n_kv = cur.take("<QQ")
    if n_tensors > cur.size or n_kv > cur.size:
        raise _corrupt(name, "GGUF counts larger than the file")
    metadata = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = _gguf_read_value(cur, cur.take("<I"))
    infos = []
    for _ in range(n_tensors):
        tname = cur.string()
        nd = cur.take("<I")
        if nd > 8:
            raise _corrupt(name, f"tensor '{tname}' has {nd} dimensions")
        dims = cur.take(f"<{nd}Q") if nd else ()
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        gtype, offset = cur.take("<IQ")
        infos.append((tname, tuple(reversed(dims)), gtype, offset))
    align = metadata.get("general.alignment")
    align = int(align.item()) if isinstance(align, array) and align.ndim == 0 else \
        _GGUF_ALIGNMENT
    if align <= 0:
        raise _corrupt(name, f"bad general.alignment {align}")
    return metadata, infos, cur.pos + (-cur.pos) % align


def _load_gguf(source, stream):
    name = source.name
    buf = source.buffer()
    try:
        metadata, infos, data_start = _parse_gguf_header(buf, name)
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    out = {}
    for tname, shape, gtype, offset in infos:
        count = _nbytes(shape, 1)
        if gtype in _GGML_DTYPES:
            mx_dtype, np_dtype = _DTYPES[_GGML_DTYPES[gtype]]
            nbytes = count * np_dtype.itemsize
            layout = "c"
        elif gtype in _GGML_QUANT:
            block_bytes, block = _GGML_QUANT[gtype]
            if not shape or shape[-1] % block:
                raise _corrupt(name, f"tensor '{tname}' of shape {shape_str(shape)} is not a "
                                     f"whole number of {block}-value blocks")
            mx_dtype, np_dtype = float16, np.dtype(np.float16)
            nbytes = count // block * block_bytes
            layout = ("gguf", gtype)
        else:
            kind = _GGML_NAMES.get(gtype, f"type {gtype}")
            raise _corrupt(name, f"tensor '{tname}' uses GGML {kind}, which mx cannot load "
                                 "(supported: F32, F16, BF16, F64, I8-I64, Q4_0, Q4_1, Q8_0)")
        start = data_start + offset
        if start + nbytes > source.size:
            raise _corrupt(name, f"truncated: tensor '{tname}' ends at byte {start + nbytes} "
                                 f"but the file has {source.size} bytes")
        out[tname] = _tensor(source, start, shape, np_dtype, mx_dtype, stream, layout, nbytes)
    return out, metadata


_FORMATS = ("npy", "npz", "safetensors", "gguf")


def _infer_format(file):
    if isinstance(file, (str, bytes, os.PathLike)):
        name = os.fsdecode(os.fspath(file))
    else:
        name = getattr(file, "name", None)
        if not isinstance(name, (str, bytes, os.PathLike)):
            raise ValueError("[load] Could not infer the file format of a file object without "
                             "a name; pass format=.")
        name = os.fsdecode(os.fspath(name))
    base = os.path.basename(name)
    if "." not in base:
        raise ValueError(f"[load] Could not infer file format from extension of {name}; pass "
                         "format=.")
    return base.rsplit(".", 1)[1]


def load(file, /, format=None, return_metadata=False, *, stream=None):
    """Load arrays from a ``.npy`` (one array), ``.npz``, ``.safetensors`` or ``.gguf`` file
    (a dict of name -> array). The format comes from the file's extension unless `format`
    names it.

    Arrays loaded from a path are lazy: only the header is read now and each array reads its
    bytes when it is evaluated. With `return_metadata` (safetensors and gguf only) the result
    is ``(arrays, metadata)``. GGUF Q4_0, Q4_1 and Q8_0 tensors are dequantized to float16.
    A truncated or malformed file raises ValueError naming the file.
    """
    if stream is not None:
        from mx.core.devices import check_stream
        check_stream(stream)
    if format is None:
        format = _infer_format(file)
    elif not isinstance(format, str):
        raise TypeError(f"[load] format must be a str, got {type(format).__name__}.")
    if format not in _FORMATS:
        raise ValueError(f"[load] Unknown file format {format}")
    if return_metadata and format in ("npy", "npz"):
        raise ValueError(f"[load] metadata not supported for format {format}")
    source = _open_source(file)
    if format == "npy":
        return _load_npy(source, stream)
    if format == "npz":
        return _load_npz(source, stream)
    if format == "safetensors":
        arrays, metadata = _load_safetensors(source, stream)
    else:
        arrays, metadata = _load_gguf(source, stream)
    return (arrays, metadata) if return_metadata else arrays


def install_rules():
    # a loaded array depends on no input: nothing flows back, its tangent is zero, and
    # under vmap it is the same for every example
    import mx.core as mx

    for prim in (READ, READ_ZIP):
        prim.vjp = lambda primals, ct, out, **p: []
        prim.jvp = lambda primals, tangents, out, **p: mx.zeros(out.shape, out.dtype)
        prim.vmap = lambda inputs, axes, out, _p=prim, **p: (
            make_node(_p, (), p, out.shape, out.dtype), None)


__all__ = ["save", "savez", "savez_compressed", "save_safetensors", "save_gguf", "load"]
