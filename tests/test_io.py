"""mx.save / savez / savez_compressed / save_safetensors / save_gguf / load
(mx/core/io.py): round trips of every dtype, metadata, lazy loading, interop with NumPy and
the safetensors and gguf packages in both directions, corrupt and truncated files, and saves
that fail without leaving a file behind."""
import io
import json
import os
import pathlib
import struct
import time
import zipfile

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
from mx.core import io as io_mod

ALL_DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
              "float16", "bfloat16", "float32", "float64", "complex64"]
GGUF_DTYPES = ["float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64"]


def _mxd(name):
    return mx.bool_ if name == "bool" else getattr(mx, name)


def _npd(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _sample(name, shape=(2, 3), seed=0):
    """Values of dtype `name` that exercise its range (negative, fractional, large)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if name == "bool":
        data = rng.random(n) > 0.5
    elif name.startswith("uint"):
        data = rng.integers(0, np.iinfo(name).max, n, dtype=name, endpoint=True)
    elif name.startswith("int"):
        data = rng.integers(np.iinfo(name).min, np.iinfo(name).max, n, dtype=name, endpoint=True)
    elif name == "complex64":
        data = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    else:
        data = (rng.standard_normal(n) * 100).astype(_npd(name))
    return mx.array(np.asarray(data).reshape(shape), dtype=_mxd(name))


def _same(a, b):
    assert isinstance(a, mx.array) and isinstance(b, mx.array)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_array_equal(np.asarray(a).reshape(-1).view(np.uint8),
                                  np.asarray(b).reshape(-1).view(np.uint8))


def _is_lazy(a):
    return a._prim is not None


def _files(d):
    return sorted(os.listdir(d))


# ---------------------------------------------------------------------------------------
# .npy
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_npy_round_trip_every_dtype(tmp_path, dtype):
    for shape in [(2, 3), (), (0, 4), (5,)]:
        a = _sample(dtype, shape)
        mx.save(str(tmp_path / "a.npy"), a)
        b = mx.load(str(tmp_path / "a.npy"))
        assert _is_lazy(b)
        _same(b, a)
        # NumPy reads it (bfloat16 as the 2-byte void both NumPy and MLX write)
        ref = np.load(tmp_path / "a.npy")
        if dtype == "bfloat16":
            assert ref.dtype == np.dtype("V2")
            ref = ref.view(ml_dtypes.bfloat16)
        np.testing.assert_array_equal(ref, np.asarray(a))


def test_npy_from_numpy_variants(tmp_path):
    base = np.arange(12, dtype=np.float32).reshape(3, 4) / 3
    np.save(tmp_path / "f.npy", np.asfortranarray(base))
    np.save(tmp_path / "be.npy", base.astype(">f4"))
    np.save(tmp_path / "bf.npy", base.astype(ml_dtypes.bfloat16))
    with open(tmp_path / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, base, version=(2, 0))
    for name in ("f", "be", "v2"):
        got = mx.load(str(tmp_path / f"{name}.npy"))
        assert got.dtype == mx.float32
        np.testing.assert_array_equal(np.asarray(got), base)
    got = mx.load(str(tmp_path / "bf.npy"))
    assert got.dtype == mx.bfloat16
    np.testing.assert_array_equal(np.asarray(got), base.astype(ml_dtypes.bfloat16))
    np.save(tmp_path / "c128.npy", base.astype(np.complex128))
    with pytest.raises(ValueError, match=r"c128\.npy.*complex128"):
        mx.load(str(tmp_path / "c128.npy"))
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy.*object"):
        mx.load(str(tmp_path / "obj.npy"))


def test_npy_paths_and_file_objects(tmp_path):
    a = mx.arange(6).reshape(2, 3)
    mx.save(str(tmp_path / "noext"), a)
    mx.save(tmp_path / "p", a)                       # pathlib.Path
    mx.save(str(tmp_path / "c.txt"), a)
    assert _files(tmp_path) == ["c.txt.npy", "noext.npy", "p.npy"]
    _same(mx.load(tmp_path / "p.npy"), a)
    buf = io.BytesIO()
    mx.save(buf, a)
    assert buf.getvalue()[:6] == b"\x93NUMPY"
    buf.seek(0)
    b = mx.load(buf, format="npy")
    assert not _is_lazy(b)                           # file objects are read at once
    _same(b, a)
    with open(tmp_path / "p.npy", "rb") as f:        # a named file object: format inferred
        _same(mx.load(f), a)
    # non-contiguous and lazy inputs are saved as their values
    t = (mx.arange(6).reshape(2, 3) * 2).T
    mx.save(str(tmp_path / "t.npy"), t)
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), np.arange(6).reshape(2, 3).T * 2)


def test_save_argument_errors(tmp_path):
    with pytest.raises(TypeError, match=r"\[save\] Expected an mx array"):
        mx.save(str(tmp_path / "x"), [1, 2, 3])
    with pytest.raises(TypeError, match=r"\[save\] Expected an mx array"):
        mx.save(str(tmp_path / "x"), np.ones(3))
    with pytest.raises(TypeError, match=r"\[save\] file must be"):
        mx.save(3, mx.ones(3))
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------------------------
# .npz
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("save", [mx.savez, mx.savez_compressed])
def test_npz_round_trip(tmp_path, save):
    arrays = {d: _sample(d, (3, 2), seed=i) for i, d in enumerate(ALL_DTYPES)}
    first, second = _sample("float32", (4,)), _sample("int8", ())
    save(str(tmp_path / "z"), first, second, **arrays)
    assert _files(tmp_path) == ["z.npz"]
    got = mx.load(str(tmp_path / "z.npz"))
    assert set(got) == {"arr_0", "arr_1"} | set(arrays)
    assert all(_is_lazy(v) for v in got.values())
    _same(got["arr_0"], first)
    _same(got["arr_1"], second)
    for k, a in arrays.items():
        _same(got[k], a)
    with np.load(tmp_path / "z.npz") as ref:
        np.testing.assert_array_equal(ref["arr_0"], np.asarray(first))
        np.testing.assert_array_equal(ref["int64"], np.asarray(arrays["int64"]))
    compressed = save is mx.savez_compressed
    with zipfile.ZipFile(tmp_path / "z.npz") as zf:
        kinds = {i.compress_type for i in zf.infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED}


def test_npz_from_numpy_and_file_objects(tmp_path):
    a = np.arange(10, dtype=np.int16).reshape(2, 5)
    b = np.linspace(0, 1, 7)
    np.savez(tmp_path / "n.npz", a, b=b)
    np.savez_compressed(tmp_path / "nc.npz", a, b=np.asfortranarray(b.reshape(1, 7)))
    got = mx.load(str(tmp_path / "n.npz"))
    np.testing.assert_array_equal(np.asarray(got["arr_0"]), a)
    np.testing.assert_array_equal(np.asarray(got["b"]), b)
    assert got["b"].dtype == mx.float64
    got = mx.load(str(tmp_path / "nc.npz"))
    np.testing.assert_array_equal(np.asarray(got["b"]), b.reshape(1, 7))
    buf = io.BytesIO()
    mx.savez_compressed(buf, mx.ones((2, 2)), w=mx.arange(3))
    buf.seek(0)
    got = mx.load(buf, format="npz")
    assert not _is_lazy(got["w"])
    _same(got["w"], mx.arange(3))
    _same(got["arr_0"], mx.ones((2, 2)))


def test_savez_errors_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"\[savez\] Cannot use un-named variables and keyword "
                                         r"arr_0"):
        mx.savez(str(tmp_path / "z"), mx.ones(2), arr_0=mx.ones(3))
    with pytest.raises(TypeError, match=r"\[savez_compressed\] Expected an mx array"):
        mx.savez_compressed(str(tmp_path / "z"), mx.ones(2), [1, 2])
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------------------------
# .safetensors
# ---------------------------------------------------------------------------------------
def _st_header(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n])


def test_safetensors_round_trip_every_dtype(tmp_path):
    arrays = {d: _sample(d, (2, 3), seed=i) for i, d in enumerate(ALL_DTYPES)}
    arrays["scalar"] = mx.array(2.5)
    arrays["empty"] = mx.zeros((0, 3), dtype=mx.int32)
    mx.save_safetensors(str(tmp_path / "s"), arrays)
    n, header = _st_header(tmp_path / "s.safetensors")
    assert n % 8 == 0 and "__metadata__" not in header
    assert header["bfloat16"]["dtype"] == "BF16" and header["float16"]["dtype"] == "F16"
    assert header["scalar"]["shape"] == []
    got = mx.load(str(tmp_path / "s.safetensors"))
    assert set(got) == set(arrays)
    assert all(_is_lazy(v) for v in got.values())
    for k, a in arrays.items():
        _same(got[k], a)


def test_safetensors_metadata(tmp_path):
    path = str(tmp_path / "m.safetensors")
    mx.save_safetensors(path, {"x": mx.ones(3)}, {"format": "mlx", "note": "héllo"})
    arrays, meta = mx.load(path, return_metadata=True)
    assert meta == {"format": "mlx", "note": "héllo"}
    _same(arrays["x"], mx.ones(3))
    mx.save_safetensors(path, {"x": mx.ones(3)})
    assert mx.load(path, return_metadata=True)[1] == {}
    mx.save_safetensors(pathlib.Path(path), {})
    assert mx.load(path, return_metadata=True) == ({}, {})


def test_safetensors_interop(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {d: _sample(d, (3, 2), seed=i) for i, d in enumerate(ALL_DTYPES)}
    mx.save_safetensors(str(tmp_path / "ours"), arrays, {"k": "v"})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for k, a in arrays.items():
        assert theirs[k].dtype == np.asarray(a).dtype
        np.testing.assert_array_equal(theirs[k], np.asarray(a))
    st.save_file({k: np.asarray(a) for k, a in arrays.items()}, str(tmp_path / "t.safetensors"),
                 metadata={"a": "b"})
    got, meta = mx.load(str(tmp_path / "t.safetensors"), return_metadata=True)
    assert meta == {"a": "b"}
    for k, a in arrays.items():
        _same(got[k], a)


def test_safetensors_argument_errors(tmp_path):
    path = str(tmp_path / "s")
    with pytest.raises(ValueError, match=r"\[save_safetensors\] Metadata must be a dictionary "
                                         r"with string keys and values"):
        mx.save_safetensors(path, {"x": mx.ones(2)}, {"k": 1})
    with pytest.raises(TypeError, match=r"\[save_safetensors\] The value for 'y' must be an mx"):
        mx.save_safetensors(path, {"x": mx.ones(2), "y": 1})
    with pytest.raises(TypeError, match=r"\[save_safetensors\] Array names must be strings"):
        mx.save_safetensors(path, {1: mx.ones(2)})
    with pytest.raises(TypeError, match=r"\[save_safetensors\] arrays must be a dict"):
        mx.save_safetensors(path, [mx.ones(2)])
    with pytest.raises(ValueError, match=r"'__metadata__' is reserved"):
        mx.save_safetensors(path, {"__metadata__": mx.ones(2)})
    assert _files(tmp_path) == []


def _write_big_safetensors(path, n_tensors, mib_each):
    """A large file written straight with NumPy (fast), tensor i filled with i."""
    count = mib_each * (1 << 20) // 4
    header = {f"t{i}": {"dtype": "F32", "shape": [count], "data_offsets":
                        [i * count * 4, (i + 1) * count * 4]} for i in range(n_tensors)}
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for i in range(n_tensors):
            np.full(count, i, np.float32).tofile(f)
    return count


def test_safetensors_load_is_lazy_fast_and_memory_light(tmp_path):
    path = str(tmp_path / "big.safetensors")
    count = _write_big_safetensors(path, 8, 16)      # 128 MiB
    mx.clear_cache()
    before = mx.get_active_memory()
    t0 = time.perf_counter()
    got = mx.load(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, elapsed
    assert mx.get_active_memory() - before < (1 << 20)
    assert all(_is_lazy(a) for a in got.values())
    # evaluating one tensor reads that tensor only
    mx.reset_peak_memory()
    t5 = got["t5"]
    mx.eval(t5)
    assert not _is_lazy(t5) and _is_lazy(got["t4"])
    assert mx.get_peak_memory() - before < count * 4 + (4 << 20)
    assert float(t5[0]) == 5.0 and float(t5[-1]) == 5.0
    assert float(mx.sum(got["t7"][:10])) == 70.0


def test_converting_lazily_loaded_files_streams(tmp_path):
    src = str(tmp_path / "big.safetensors")
    count = _write_big_safetensors(src, 8, 8)        # 64 MiB in 8 tensors
    arrays = mx.load(src)
    mx.clear_cache()
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    mx.save_gguf(str(tmp_path / "big.gguf"), arrays)
    # one tensor at a time, and the loaded arrays stay unevaluated
    assert mx.get_peak_memory() - before < 2 * count * 4
    assert all(_is_lazy(a) for a in arrays.values())
    got = mx.load(str(tmp_path / "big.gguf"))
    assert float(got["t3"][7]) == 3.0 and float(got["t6"][-1]) == 6.0


def test_lazy_arrays_keep_reading_the_file_they_came_from(tmp_path):
    path = str(tmp_path / "w.safetensors")
    mx.save_safetensors(path, {"w": mx.arange(5)})
    old = mx.load(path)["w"]
    mx.save_safetensors(path, {"w": mx.arange(5) * 10})      # replaces the path
    _same(old, mx.arange(5))
    _same(mx.load(path)["w"], mx.arange(5) * 10)
    # saving lazily loaded arrays back over their own file works
    w = mx.load(path)
    mx.save_safetensors(path, {"w": w["w"] + 1})
    _same(mx.load(path)["w"], mx.arange(5) * 10 + 1)


def test_async_eval_of_loaded_arrays(tmp_path):
    path = str(tmp_path / "a.safetensors")
    arrays = {f"t{i}": mx.arange(1000) * i for i in range(6)}
    mx.save_safetensors(path, arrays)
    got = mx.load(path)
    mx.async_eval(*got.values())
    for k, a in arrays.items():
        _same(got[k], a)


def test_loaded_arrays_in_transforms(tmp_path):
    path = str(tmp_path / "p.npz")
    mx.savez(path, w=mx.array([1.0, 2.0, 3.0]))
    w = mx.load(path)["w"]
    g = mx.grad(lambda x: (x * w).sum())(mx.ones(3))
    np.testing.assert_array_equal(np.asarray(g), [1.0, 2.0, 3.0])
    w2 = mx.load(path)["w"]
    out = mx.vmap(lambda x: x * w2)(mx.ones((2, 3)))
    np.testing.assert_array_equal(np.asarray(out), [[1.0, 2.0, 3.0]] * 2)
    w3 = mx.load(path)["w"]
    _, (jt,) = mx.jvp(lambda x: x * w3, [mx.ones(3)], [mx.ones(3)])
    np.testing.assert_array_equal(np.asarray(jt), [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------
# .gguf
# ---------------------------------------------------------------------------------------
def test_gguf_round_trip(tmp_path):
    arrays = {d: _sample(d, (2, 3, 4), seed=i) for i, d in enumerate(GGUF_DTYPES)}
    arrays["vec"] = mx.arange(5).astype(mx.int16)
    arrays["scalar"] = mx.array(1.5)
    mx.save_gguf(str(tmp_path / "g"), arrays, {})
    assert _files(tmp_path) == ["g.gguf"]
    got = mx.load(str(tmp_path / "g.gguf"))
    assert list(got) == list(arrays)
    assert all(_is_lazy(v) for v in got.values())
    for k, a in arrays.items():
        _same(got[k], a)
    raw = (tmp_path / "g.gguf").read_bytes()
    assert raw[:4] == b"GGUF" and struct.unpack("<I", raw[4:8])[0] == 3


def test_gguf_metadata_round_trip(tmp_path):
    meta = {"name": "tiny", "tokens": ["a", "bc", "ü"], "none": [],
            "i32": mx.array(3), "f32": mx.array(2.5), "flag": mx.array(True),
            "u8": mx.array(7, dtype=mx.uint8), "i64": mx.array(-5, dtype=mx.int64),
            "u64": mx.array(2 ** 40, dtype=mx.uint64), "f64": mx.array(0.1, dtype=mx.float64),
            "vec": mx.array([1, 2, 3]), "fvec": mx.array([0.5, 1.5]),
            "i8vec": mx.array([-1, 2], dtype=mx.int8)}
    path = str(tmp_path / "m.gguf")
    mx.save_gguf(path, {"x": mx.ones((2,))}, meta)
    arrays, got = mx.load(path, return_metadata=True)
    _same(arrays["x"], mx.ones((2,)))
    assert set(got) == set(meta)
    for k, v in meta.items():
        if isinstance(v, mx.array):
            _same(got[k], v)
        else:
            assert got[k] == v
    mx.save_gguf(path, {"x": mx.ones(1)})                       # metadata is optional
    assert mx.load(path, return_metadata=True)[1] == {}


def test_gguf_alignment(tmp_path):
    path = str(tmp_path / "a.gguf")
    arrays = {"a": mx.ones((3,), dtype=mx.int8), "b": mx.arange(5).astype(mx.float32)}
    for align in (32, 64, 128):
        # the alignment is written as the uint32 readers expect, whatever the integer type
        meta = {} if align == 32 else {"general.alignment": mx.array(
            align, dtype=mx.uint32 if align == 64 else mx.int32)}
        mx.save_gguf(path, arrays, meta)
        gguf = pytest.importorskip("gguf")
        reader = gguf.GGUFReader(path)
        assert reader.alignment == align
        for t in reader.tensors:
            assert t.data_offset % align == 0
        for k, a in arrays.items():
            _same(mx.load(path)[k], a)


def test_gguf_read_by_gguf_package(tmp_path):
    gguf = pytest.importorskip("gguf")
    arrays = {"w": _sample("float32", (3, 4)), "h": _sample("float16", (8,)),
              "i": _sample("int32", (2, 2)), "b": _sample("bfloat16", (2, 3))}
    mx.save_gguf(str(tmp_path / "g.gguf"), arrays,
                 {"general.name": "t", "n": mx.array(4, dtype=mx.uint32), "l": ["x", "y"]})
    reader = gguf.GGUFReader(str(tmp_path / "g.gguf"))
    tensors = {t.name: t for t in reader.tensors}
    np.testing.assert_array_equal(tensors["w"].data, np.asarray(arrays["w"]))
    np.testing.assert_array_equal(tensors["h"].data, np.asarray(arrays["h"]))
    np.testing.assert_array_equal(tensors["i"].data, np.asarray(arrays["i"]))
    assert tensors["b"].tensor_type == gguf.GGMLQuantizationType.BF16
    assert reader.get_field("general.name").contents() == "t"
    assert reader.get_field("n").contents() == 4
    assert reader.get_field("l").contents() == ["x", "y"]


def test_gguf_written_by_gguf_package(tmp_path):
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    path = str(tmp_path / "p.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tensor("f32", x)
    w.add_tensor("f16", x.astype(np.float16))
    w.add_tensor("i32", np.arange(6, dtype=np.int32).reshape(2, 3))
    quants = [gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0,
              gguf.GGMLQuantizationType.Q4_1]
    for qt in quants:
        w.add_tensor(qt.name, gguf.quants.quantize(x, qt), raw_dtype=qt)
    w.add_uint32("u32", 7)
    w.add_float64("f64", 1.25)
    w.add_array("arr", [1, 2, 3])
    w.add_string("name", "héllo")
    w.add_bool("flag", True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    arrays, meta = mx.load(path, return_metadata=True)
    np.testing.assert_array_equal(np.asarray(arrays["f32"]), x)
    np.testing.assert_array_equal(np.asarray(arrays["f16"]), x.astype(np.float16))
    np.testing.assert_array_equal(np.asarray(arrays["i32"]), np.arange(6).reshape(2, 3))
    for qt in quants:
        got = arrays[qt.name]
        assert got.dtype == mx.float16 and got.shape == (4, 64)
        want = gguf.quants.dequantize(gguf.quants.quantize(x, qt), qt)
        np.testing.assert_allclose(np.asarray(got).astype(np.float32), want, rtol=1e-3, atol=1e-3)
    assert meta["general.architecture"] == "llama" and meta["name"] == "héllo"
    _same(meta["u32"], mx.array(7, dtype=mx.uint32))
    _same(meta["f64"], mx.array(1.25, dtype=mx.float64))
    _same(meta["flag"], mx.array(True))
    assert meta["arr"].tolist() == [1, 2, 3]
    # K-quants are not supported: a clear error naming the file and the type
    w = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
    q6k = gguf.GGMLQuantizationType.Q6_K
    raw = np.zeros(gguf.quants.quant_shape_to_byte_shape((1, 256), q6k), np.uint8)
    w.add_tensor("q", raw, raw_dtype=q6k)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ValueError, match=r"k\.gguf.*Q6_K"):
        mx.load(str(tmp_path / "k.gguf"))


GGUF_ERRORS = [
    ({"x": mx.ones(2, dtype=mx.bool_)}, {}, ValueError, r"dtype bool is not supported"),
    ({"x": mx.ones(2, dtype=mx.uint8)}, {}, ValueError, r"dtype uint8 is not supported"),
    ({"x": mx.ones(2, dtype=mx.complex64)}, {}, ValueError, r"dtype complex64 is not supported"),
    ({"x": mx.ones(2)}, {"k": mx.ones((2, 2))}, ValueError,
     r"Cannot save arrays with more than one dimension"),
    ({"x": mx.ones(2)}, {"k": mx.ones((2,), dtype=mx.float16)}, ValueError,
     r"array type float16 not supported for metadata"),
    ({"x": mx.ones(2)}, {"k": 3}, TypeError, r"Metadata 'k' must be an array, a str or a list"),
    ({"x": mx.ones(2)}, {"k": ["a", 1]}, TypeError, r"a list must hold only strings"),
    ({"x": mx.ones(2)}, {1: "a"}, TypeError, r"Metadata keys must be strings"),
    ({"x": mx.ones(2)}, {"general.alignment": mx.array(12, dtype=mx.uint32)}, ValueError,
     r"general.alignment must be a positive multiple of 8"),
    ({"x": mx.ones(2)}, ["a"], TypeError, r"metadata must be a dict"),
    ({"x": [1.0]}, {}, TypeError, r"The value for 'x' must be an mx array"),
]


@pytest.mark.parametrize("case", range(len(GGUF_ERRORS)))
def test_gguf_save_errors_leave_no_file(tmp_path, case):
    arrays, meta, exc, msg = GGUF_ERRORS[case]
    with pytest.raises(exc, match=msg) as info:
        mx.save_gguf(str(tmp_path / "g"), {"ok": mx.ones(3), **arrays}, meta)
    assert str(info.value).startswith("[save_gguf]")
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------------------------
# load: format choice and errors
# ---------------------------------------------------------------------------------------
def test_load_format_selection(tmp_path):
    mx.save_safetensors(str(tmp_path / "s"), {"x": mx.ones(2)})
    os.rename(tmp_path / "s.safetensors", tmp_path / "s.bin")
    _same(mx.load(str(tmp_path / "s.bin"), format="safetensors")["x"], mx.ones(2))
    with pytest.raises(ValueError, match=r"\[load\] Unknown file format bin"):
        mx.load(str(tmp_path / "s.bin"))
    with pytest.raises(ValueError, match=r"\[load\] Unknown file format foo"):
        mx.load(str(tmp_path / "s.bin"), format="foo")
    with pytest.raises(ValueError, match=r"\[load\] Could not infer file format"):
        mx.load(str(tmp_path / "noext"))
    with pytest.raises(ValueError, match=r"\[load\] Could not infer the file format"):
        mx.load(io.BytesIO(b"x"))
    with pytest.raises(ValueError, match=r"\[load\] metadata not supported for format npy"):
        mx.load(str(tmp_path / "a.npy"), return_metadata=True)
    with pytest.raises(ValueError, match=r"\[load\] metadata not supported for format npz"):
        mx.load(str(tmp_path / "a.npz"), return_metadata=True)
    with pytest.raises(FileNotFoundError, match=r"\[load\] Failed to open file .*missing\.npy"):
        mx.load(str(tmp_path / "missing.npy"))
    with pytest.raises(RuntimeError):                 # what MLX raises
        mx.load(str(tmp_path / "missing.npy"))
    with pytest.raises(TypeError, match=r"\[load\] file must be"):
        mx.load(3, format="npy")
    with pytest.raises(TypeError, match=r"stream"):
        mx.load(str(tmp_path / "s.bin"), format="safetensors", stream="cpu")
    _same(mx.load(str(tmp_path / "s.bin"), format="safetensors", stream=mx.cpu)["x"], mx.ones(2))


def _saved(tmp_path, fmt):
    """A valid file of each format, with two arrays (one array for npy)."""
    a, b = mx.arange(40).reshape(5, 8).astype(mx.float32), mx.arange(16).astype(mx.int32)
    path = str(tmp_path / f"f.{fmt}")
    if fmt == "npy":
        mx.save(path, a)
    elif fmt == "npz":
        mx.savez(path, a=a, b=b)
    elif fmt == "safetensors":
        mx.save_safetensors(path, {"a": a, "b": b})
    else:
        mx.save_gguf(path, {"a": a, "b": b}, {"s": "text"})
    return path


@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "gguf"])
def test_truncated_files_raise_value_error_naming_the_file(tmp_path, fmt):
    path = _saved(tmp_path, fmt)
    raw = pathlib.Path(path).read_bytes()
    for cut in sorted({0, 3, 8, 20, len(raw) // 2, len(raw) - 1}):
        bad = str(tmp_path / f"cut{cut}.{fmt}")
        pathlib.Path(bad).write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.{fmt}"):
            mx.eval(mx.load(bad))
        with pytest.raises(RuntimeError):            # what MLX raises
            mx.eval(mx.load(bad))


@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "gguf"])
def test_garbage_files_raise_value_error(tmp_path, fmt):
    bad = tmp_path / f"junk.{fmt}"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"junk\." + fmt):
        mx.load(str(bad))


def test_corrupt_headers(tmp_path):
    def st(header, data=b""):
        text = json.dumps(header).encode()
        p = tmp_path / f"c{len(os.listdir(tmp_path))}.safetensors"
        p.write_bytes(struct.pack("<Q", len(text)) + text + data)
        return str(p)

    cases = [
        (st({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8),
         r"needs 8 bytes but its data offsets"),
        (st({"x": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2),
         r"dtype F8_E4M3, which mx does not support"),
        (st({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}),
         r"malformed entry for tensor 'x'"),
        (st({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
         r"truncated: tensor 'x'"),
        (st({"__metadata__": {"a": 1}}), r"__metadata__ must map strings to strings"),
        (st([1, 2]), r"not an object"),
    ]
    for path, msg in cases:
        with pytest.raises(ValueError, match=r"c\d\.safetensors.*" + msg):
            mx.load(path)
    p = tmp_path / "j.safetensors"
    p.write_bytes(struct.pack("<Q", 5) + b"{oops")
    with pytest.raises(ValueError, match=r"j\.safetensors.*not valid JSON"):
        mx.load(str(p))
    g = tmp_path / "v.gguf"
    g.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 0, 0))
    with pytest.raises(ValueError, match=r"v\.gguf.*unsupported GGUF version 9"):
        mx.load(str(g))
    g.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" +
                  struct.pack("<I", 99))
    with pytest.raises(ValueError, match=r"unknown GGUF metadata value type 99"):
        mx.load(str(g))
    n = tmp_path / "h.npy"
    n.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 10) + b"{'a': 1}  ")
    with pytest.raises(ValueError, match=r"h\.npy.*malformed \.npy header"):
        mx.load(str(n))


def test_corrupt_compressed_member_is_reported_at_eval(tmp_path):
    path = tmp_path / "c.npz"
    mx.savez_compressed(str(path), w=mx.arange(4096).astype(mx.float32))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w.npy")
    raw = bytearray(path.read_bytes())
    middle = info.header_offset + 30 + len("w.npy") + info.compress_size // 2
    raw[middle:middle + 8] = bytes(8)
    path.write_bytes(bytes(raw))
    w = mx.load(str(path))["w"]
    assert _is_lazy(w)
    with pytest.raises(ValueError, match=r"c\.npz.*member w\.npy"):
        mx.eval(w)


def test_file_objects_for_every_format():
    arrays = {"a": mx.arange(6).reshape(2, 3).astype(mx.float16), "b": mx.ones((2,))}
    for fmt, save in (("safetensors", lambda f: mx.save_safetensors(f, arrays, {"k": "v"})),
                      ("gguf", lambda f: mx.save_gguf(f, arrays, {"k": "v"}))):
        buf = io.BytesIO()
        save(buf)
        buf.seek(0)
        got, meta = mx.load(buf, format=fmt, return_metadata=True)
        assert meta == {"k": "v"}
        for k, a in arrays.items():
            assert not _is_lazy(got[k])
            _same(got[k], a)


def test_truncation_after_load_is_reported_at_eval(tmp_path):
    path = _saved(tmp_path, "safetensors")
    arrays = mx.load(path)
    with open(path, "r+b") as f:          # shrink the very file the arrays read from
        f.truncate(os.path.getsize(path) - 10)
    with pytest.raises(ValueError, match=r"f\.safetensors.*file ended"):
        mx.eval(arrays["b"])


# ---------------------------------------------------------------------------------------
# saving never leaves a partial file
# ---------------------------------------------------------------------------------------
def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    mx.save_safetensors(str(path), {"x": mx.ones(3)})
    before = path.read_bytes()

    # an array whose evaluation fails (its source file was truncated)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(before)
    broken = mx.load(str(cut))["x"]
    cut.write_bytes(before[:-4])
    with pytest.raises(ValueError, match="cut.safetensors"):
        mx.save_safetensors(str(path), {"a": mx.ones(2), "x": broken})
    assert path.read_bytes() == before

    # a failure in the middle of writing the data
    calls = []

    def failing_raw(data):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return memoryview(data.reshape(-1).view(np.uint8))

    monkeypatch.setattr(io_mod, "_raw", failing_raw)
    for save in (lambda p: mx.save_safetensors(p, {"a": mx.ones(2), "b": mx.zeros(2)}),
                 lambda p: mx.savez(p, mx.ones(2), mx.zeros(2)),
                 lambda p: mx.save_gguf(p, {"a": mx.ones(2), "b": mx.zeros(2)})):
        calls.clear()
        with pytest.raises(OSError, match="disk full"):
            save(str(path))
        assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cut.safetensors", "w.safetensors"]


def test_saved_files_get_ordinary_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    mx.save(str(tmp_path / "a"), mx.ones(2))
    assert os.stat(tmp_path / "a.npy").st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    os.chmod(tmp_path / "a.npy", 0o600)
    mx.save(str(tmp_path / "a"), mx.ones(3))         # overwriting keeps the file's mode
    assert os.stat(tmp_path / "a.npy").st_mode & 0o777 == 0o600


def test_public_names():
    assert set(io_mod.__all__) == {"save", "savez", "savez_compressed", "save_safetensors",
                                   "save_gguf", "load"}
    for name in io_mod.__all__:
        assert getattr(mx, name) is getattr(io_mod, name)
