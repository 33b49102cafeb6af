"""mx.fft (mx/core/fft.py) against numpy.fft: every transform over dtypes, sizes, axes and
norms (MLX's complex64 / float32 results), frequencies and shifts, stft/istft against a NumPy
reference of MLX's definition, every error path, gradients in MLX's convention (vjp = the
conjugate transpose) and vmap."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core import fft as fft_mod
from oracle import assert_same

F = mx.fft
HYP = settings(max_examples=40, deadline=None)
DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def rand(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if dtype == "complex64":
        x = x + 1j * rng.standard_normal(shape)
    if dtype == "bool":
        return x > 0
    if "int" in dtype:
        return (x * 4).astype(dtype)
    return x.astype(dtype)


def mxa(x):
    return mx.array(x, dtype=mx.bool_ if x.dtype == np.bool_ else getattr(mx, x.dtype.name))


def npa(x):
    return np.array(x)


# ---------------------------------------------------------------------------------------
# transforms against numpy
# ---------------------------------------------------------------------------------------
ONE_D = [("fft", {}), ("fft", {"n": 9}), ("fft", {"n": 3, "axis": 0}), ("ifft", {"axis": 1}),
         ("ifft", {"n": 2}), ("rfft", {}), ("rfft", {"n": 7, "axis": 0}), ("rfft", {"n": 3}),
         ("irfft", {}), ("irfft", {"n": 9}), ("irfft", {"n": 1}), ("irfft", {"axis": 0})]


@pytest.mark.parametrize("name, kw", ONE_D, ids=str)
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "int32"])
def test_one_dimensional(name, kw, norm, dtype):
    x = rand((4, 6), dtype)
    # rfft of complex input reads its real part (MLX)
    want = getattr(np.fft, name)(x.real if name == "rfft" else x, norm=norm, **kw)
    got = getattr(F, name)(mxa(x), norm=norm, **kw)
    assert_same(got, want, dtype="float32" if name == "irfft" else "complex64",
                rtol=1e-5, atol=1e-5)


N_D = [("fft2", {}), ("fft2", {"s": (3, 8)}), ("fft2", {"axes": (0, 2)}), ("ifft2", {"s": (5, 2)}),
       ("fftn", {}), ("fftn", {"s": (2, 3, 5), "axes": (2, 0, 1)}), ("fftn", {"axes": (1,)}),
       ("ifftn", {"axes": (-1, 0)}), ("rfft2", {}), ("rfft2", {"s": (4, 5)}),
       ("rfftn", {"axes": (2, 0)}), ("rfftn", {"s": (3, 3), "axes": (0, 1)}),
       ("irfft2", {}), ("irfft2", {"s": (2, 9)}), ("irfftn", {}),
       ("irfftn", {"axes": (0, 2), "s": (3, 6)}),
       ("irfftn", {"axes": (1, 0)})]


@pytest.mark.parametrize("name, kw", N_D, ids=str)
@pytest.mark.parametrize("norm", ["backward", "ortho"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_n_dimensional(name, kw, norm, dtype):
    x = rand((3, 4, 6), dtype, seed=1)
    want = getattr(np.fft, name)(x.real if name.startswith("rfft") else x, norm=norm, **kw)
    got = getattr(F, name)(mxa(x), norm=norm, **kw)
    assert_same(got, want, dtype="float32" if name.startswith("irfft") else "complex64",
                rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "float16", "bfloat16", "float64"])
def test_promotion(dtype):
    x = np.arange(8.0).reshape(2, 4) % 3
    m = mx.array(x).astype(getattr(mx, dtype) if dtype != "bool" else mx.bool_)
    xv = npa(m.astype(mx.float32)).astype(np.float64)
    for name in ("fft", "ifft", "rfft", "fftn"):
        r = getattr(F, name)(m)
        assert r.dtype == mx.complex64
        np.testing.assert_allclose(npa(r), getattr(np.fft, name)(xv), atol=1e-5)
    assert F.irfft(m).dtype == mx.float32


def test_rfft_of_complex_uses_real_part():
    z = rand((5, 6), "complex64")
    assert_same(F.rfft(mxa(z)), np.fft.rfft(z.real).astype(np.complex64), rtol=1e-5, atol=1e-5)
    assert_same(F.rfftn(mxa(z)), np.fft.rfftn(z.real).astype(np.complex64), rtol=1e-5, atol=1e-5)


def test_empty_axes_and_batches():
    x = mx.array(np.arange(6.0).reshape(2, 3), dtype=mx.float32)
    # MLX returns the input untouched when there is nothing to transform
    r = F.fftn(x, axes=[])
    assert r.dtype == mx.float32 and r.tolist() == x.tolist()
    assert F.rfftn(mx.ones((2, 2), dtype=mx.int32), axes=[]).dtype == mx.int32
    assert F.irfftn(x, axes=()).dtype == mx.float32
    e = F.fft(mx.zeros((0, 4)))
    assert e.shape == (0, 4) and e.dtype == mx.complex64
    assert F.rfft(mx.zeros((0, 4))).shape == (0, 3)


def test_roundtrips():
    x = rand((3, 10), "float32", 3)
    np.testing.assert_allclose(npa(F.irfft(F.rfft(mxa(x)), n=10)), x, atol=1e-5)
    np.testing.assert_allclose(npa(F.ifft(F.fft(mxa(x)))).real, x, atol=1e-5)
    np.testing.assert_allclose(npa(F.irfftn(F.rfftn(mxa(x)), s=(3, 10), axes=(0, 1))), x,
                               atol=1e-5)
    np.testing.assert_allclose(npa(F.ifft2(F.fft2(mxa(x), norm="ortho"), norm="ortho")).real, x,
                               atol=1e-5)


def test_stream_argument_positional():
    # MLX's fft signatures take stream as an ordinary (positional-or-keyword) argument
    x = mx.ones((4,))
    assert F.fft(x, None, -1, "backward", mx.cpu).shape == (4,)
    assert F.fftn(x, None, None, "backward", mx.cpu).shape == (4,)


# ---------------------------------------------------------------------------------------
# frequencies and shifts
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("d", [1.0, 0.3, 2])
def test_fftfreq(n, d):
    assert_same(F.fftfreq(n, d), np.fft.fftfreq(n, d).astype(np.float32))
    assert_same(F.rfftfreq(n, d=d), np.fft.rfftfreq(n, d).astype(np.float32))


def test_fftfreq_array_spacing():
    assert_same(F.fftfreq(4, d=mx.array(2.0)), np.fft.fftfreq(4, 2.0).astype(np.float32))


@pytest.mark.parametrize("axes", [None, 0, -1, [1], (0, 2), [2, 2]], ids=str)
@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
def test_shifts(name, axes):
    x = np.arange(2 * 3 * 5).reshape(2, 3, 5).astype(np.int32)
    if isinstance(axes, list) and len(axes) == 2 and axes[0] == axes[1]:
        # repeated axes shift repeatedly (MLX); numpy does the same
        want = getattr(np.fft, name)(getattr(np.fft, name)(x, axes=2), axes=2)
    else:
        want = getattr(np.fft, name)(x, axes=axes)
    got = getattr(F, name)(mxa(x), axes=axes)
    assert_same(got, want)


def test_shift_scalar_and_dtype():
    assert F.fftshift(mx.array(3)).item() == 3
    assert F.fftshift(mx.arange(5, dtype=mx.float16)).dtype == mx.float16
    assert F.ifftshift(mx.arange(5)).tolist() == [2, 3, 4, 0, 1]


# ---------------------------------------------------------------------------------------
# stft / istft
# ---------------------------------------------------------------------------------------
def ref_window(window, n_fft, win_length):
    wl = n_fft if win_length is None else win_length
    w = np.ones(wl) if window is None else np.asarray(window, np.float64)
    left = (n_fft - len(w)) // 2
    return np.pad(w, (left, n_fft - len(w) - left))


def ref_stft(x, n_fft=2048, hop_length=None, win_length=None, window=None, center=True,
             pad_mode="reflect", norm="backward", onesided=None):
    """MLX's stft written with NumPy (checked against MLX 0.32)."""
    hop = hop_length or n_fft // 4
    cplx = np.iscomplexobj(x)
    onesided = (not cplx) if onesided is None else onesided
    if onesided:
        x = np.real(x)
    w = ref_window(window, n_fft, win_length)
    if center:
        p = n_fft // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(p, p)], mode=pad_mode)
    nf = 1 + (x.shape[-1] - n_fft) // hop
    frames = x[..., np.arange(nf)[:, None] * hop + np.arange(n_fft)] * w
    spec = np.fft.rfft(frames, axis=-1, norm=norm) if onesided else \
        np.fft.fft(frames, axis=-1, norm=norm)
    return np.swapaxes(spec, -1, -2)


def ref_istft(s, n_fft=None, hop_length=None, win_length=None, window=None, center=True,
              norm="backward", onesided=True, length=None):
    """MLX's istft written with NumPy (checked against MLX 0.32)."""
    n_freq, nf = s.shape[-2:]
    if n_fft is None:
        n_fft = 2 * (n_freq - 1) if onesided else n_freq
    hop = hop_length or n_fft // 4
    w = ref_window(window, n_fft, win_length)
    fr = np.swapaxes(s, -1, -2)
    fr = np.fft.irfft(fr, n=n_fft, axis=-1, norm=norm) if onesided else \
        np.fft.ifft(fr, n=n_fft, axis=-1, norm=norm).real
    fr = fr * w
    total = n_fft + hop * (nf - 1)
    y = np.zeros(s.shape[:-2] + (total,))
    env = np.zeros(total)
    for i in range(nf):
        y[..., i * hop:i * hop + n_fft] += fr[..., i, :]
        env[i * hop:i * hop + n_fft] += w ** 2
    y = np.where(env > 1e-11, y / np.where(env > 1e-11, env, 1), 0)
    start = n_fft // 2 if center else 0
    stop = (total - n_fft // 2 if center else total) if length is None else start + max(length, 0)
    y = y[..., start:min(stop, total)]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, stop - start - y.shape[-1])])


STFT_CASES = [
    {"n_fft": 8}, {"n_fft": 8, "hop_length": 3}, {"n_fft": 8, "center": False},
    {"n_fft": 8, "win_length": 5}, {"n_fft": 8, "window": np.hanning(8)},
    {"n_fft": 8, "window": np.hanning(5), "win_length": 7}, {"n_fft": 8, "win_length": 0},
    {"n_fft": 8, "pad_mode": "constant"}, {"n_fft": 8, "pad_mode": "edge"},
    {"n_fft": 8, "norm": "ortho"}, {"n_fft": 7, "hop_length": 2, "norm": "forward"},
    {"n_fft": 8, "onesided": False}, {"n_fft": 16, "hop_length": 1},
]


def kw_id(kw):
    return ",".join(f"{k}={len(v) if isinstance(v, np.ndarray) else v}" for k, v in kw.items())


@pytest.mark.parametrize("kw", STFT_CASES, ids=kw_id)
@pytest.mark.parametrize("kind", ["real", "complex", "batched", "short"])
def test_stft(kw, kind):
    x = {"real": rand((20,), "float32"), "complex": rand((20,), "complex64"),
         "batched": rand((2, 3, 20), "float32"), "short": rand((3,), "float32")}[kind]
    mkw = {k: (mx.array(v.astype(np.float32)) if isinstance(v, np.ndarray) else v)
           for k, v in kw.items()}
    if kind == "short" and not kw.get("center", True):
        with pytest.raises(ValueError, match=r"\[stft\] Input is too short for the given n_fft"):
            F.stft(mxa(x), **mkw)
        return
    got = F.stft(mxa(x), **mkw)
    assert_same(got, ref_stft(x, **kw).astype(np.complex64), rtol=1e-5, atol=1e-5)


def test_stft_recorded_from_mlx():
    got = F.stft(mx.arange(10.0), n_fft=4, hop_length=2, center=False)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(npa(got), [[6, 14, 22, 30], [-2 + 2j] * 4, [-2] * 4])
    got = F.stft(mx.arange(10.0), n_fft=4, hop_length=2, win_length=2, center=False)
    np.testing.assert_allclose(npa(got), [[3, 7, 11, 15], [-2 - 1j, -4 - 3j, -6 - 5j, -8 - 7j],
                                          [1, 1, 1, 1]])
    assert F.stft(mx.zeros((20,))).shape == (1025, 1)
    # complex input with onesided=True is cast to real
    z = rand((20,), "complex64", 2)
    assert_same(F.stft(mxa(z), n_fft=8, onesided=True),
                ref_stft(z.real, n_fft=8).astype(np.complex64), rtol=1e-5, atol=1e-5)


ISTFT_CASES = [
    {}, {"hop_length": 2}, {"hop_length": 3, "center": False},
    {"n_fft": 8, "hop_length": 2, "window": np.hanning(8)},
    {"n_fft": 9, "hop_length": 2}, {"n_fft": 12, "hop_length": 2}, {"n_fft": 6, "hop_length": 2},
    {"hop_length": 2, "win_length": 5}, {"hop_length": 2, "length": 9},
    {"hop_length": 2, "length": 40},
    {"hop_length": 2, "length": 40, "center": False}, {"hop_length": 2, "length": 0},
    {"hop_length": 2, "norm": "ortho"},
    {"n_fft": 8, "hop_length": 4, "window": np.hanning(8), "center": False},
    {"n_fft": 8, "hop_length": 10}, {"win_length": 0, "hop_length": 2},
]


@pytest.mark.parametrize("kw", ISTFT_CASES, ids=kw_id)
def test_istft(kw):
    s = rand((2, 5, 7), "complex64", 4)
    mkw = {k: (mx.array(v.astype(np.float32)) if isinstance(v, np.ndarray) else v)
           for k, v in kw.items()}
    got = F.istft(mxa(s), **mkw)
    assert_same(got, ref_istft(s, **kw).astype(np.float32), rtol=1e-5, atol=1e-5)


def test_istft_two_sided_and_real_input():
    s = rand((8, 7), "complex64", 5)
    for n_fft in (None, 6, 10):
        got = F.istft(mxa(s), n_fft=n_fft, hop_length=2, onesided=False)
        assert_same(got, ref_istft(s, n_fft, 2, onesided=False).astype(np.float32),
                    rtol=1e-5, atol=1e-5)
    r = rand((5, 4), "float64", 6)
    assert_same(F.istft(mxa(r)), ref_istft(r.astype(np.complex128)).astype(np.float32),
                rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [{"n_fft": 8, "hop_length": 2},
                                {"n_fft": 8, "hop_length": 2, "center": False},
                                {"n_fft": 7, "hop_length": 3, "window": np.hanning(7) + 0.1},
                                {"n_fft": 16, "hop_length": 4, "norm": "ortho"}], ids=kw_id)
def test_stft_istft_roundtrip(kw):
    x = rand((2, 40), "float32", 7)
    mkw = {k: (mx.array(v.astype(np.float32)) if isinstance(v, np.ndarray) else v)
           for k, v in kw.items()}
    spec = F.stft(mxa(x), **mkw)
    back = F.istft(spec, length=40, **mkw)
    n = 40 if kw.get("center", True) else 40 - (40 - kw["n_fft"]) % kw["hop_length"]
    np.testing.assert_allclose(npa(back)[..., :n], x[..., :n], atol=1e-5)
    z = rand((40,), "complex64", 8)
    spec = F.stft(mxa(z), **mkw)
    back = F.istft(spec, onesided=False, length=40, **mkw)
    np.testing.assert_allclose(npa(back)[:n], z.real[:n], atol=1e-5)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def test_transform_errors():
    x = mx.ones((2, 4))
    for name in ("fft", "ifft", "rfft", "irfft"):
        f = getattr(F, name)
        with pytest.raises(ValueError, match=rf"\[{name}\] Invalid FFT output size requested "
                                             r"\(0\)"):
            f(x, n=0)
        with pytest.raises(ValueError, match=r"Invalid FFT output size requested \(-1\)"):
            f(x, n=-1)
        with pytest.raises(IndexError, match=rf"\[{name}\] Axis 2 is out of bounds for array "
                                             r"with 2 dimensions"):
            f(x, axis=2)
        with pytest.raises(IndexError, match=r"Axis -3 is out of bounds"):
            f(x, axis=-3)
        with pytest.raises(ValueError, match=rf"\[{name}\] Requires array with at least one "
                                             r"dimension"):
            f(mx.array(1.0))
        with pytest.raises(ValueError, match=rf"\[{name}\] Invalid norm. Expected one of "
                                             r"\{'backward', 'ortho', 'forward'\}"):
            f(x, norm="bad")
        with pytest.raises(TypeError, match=rf"\[{name}\] norm must be a string"):
            f(x, norm=None)
        with pytest.raises(TypeError, match=rf"\[{name}\] size must be an integer, got float"):
            f(x, n=4.0)
        with pytest.raises(TypeError, match=rf"\[{name}\] axis must be an integer"):
            f(x, axis=0.0)
    with pytest.raises(ValueError, match=r"\[fft\] Invalid FFT output size requested \(0\)"):
        F.fft(mx.zeros((0,)))
    with pytest.raises(ValueError, match=r"\[irfft\] Invalid FFT output size requested \(0\)"):
        F.irfft(mx.ones((2, 1)))


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn", "fft2", "ifft2", "rfft2",
                                  "irfft2"])
def test_n_dimensional_errors(name):
    f = getattr(F, name)
    x = mx.ones((2, 4))
    if name.endswith("n"):
        with pytest.raises(ValueError, match=rf"\[{name}\] `axes` should not be `None` if `s` "
                                             r"is not `None`"):
            f(x, s=(2, 2))
    with pytest.raises(ValueError, match=rf"\[{name}\] Shape and axes have different sizes"):
        f(x, s=(3,), axes=(0, 1))
    with pytest.raises(ValueError, match=rf"\[{name}\] Duplicated axis received \(-1, 1\)"):
        f(x, axes=(-1, 1))
    with pytest.raises(IndexError, match=rf"\[{name}\] Axis 3 is out of bounds"):
        f(x, axes=(0, 3))
    with pytest.raises(ValueError, match=rf"\[{name}\] Invalid FFT output size requested \(0\)"):
        f(x, s=(2, 0), axes=(0, 1))
    with pytest.raises(ValueError, match=rf"\[{name}\] Requires array with at least one "
                                         r"dimension"):
        f(mx.array(2.0))
    with pytest.raises(TypeError, match=rf"\[{name}\] axes must be a sequence of ints"):
        f(x, axes=1)
    with pytest.raises(TypeError, match=rf"\[{name}\] s must be a sequence of ints"):
        f(x, s=3, axes=(0,))
    if name.endswith("2"):
        with pytest.raises(IndexError, match=r"Axis -2 is out of bounds for array with 1 "
                                             r"dimensions"):
            f(mx.ones((4,)))


def test_freq_and_shift_errors():
    for name in ("fftfreq", "rfftfreq"):
        f = getattr(F, name)
        with pytest.raises(ValueError, match=rf"\[{name}\] `n` must be greater than 0"):
            f(0)
        with pytest.raises(ValueError, match=rf"\[{name}\] `n` must be greater than 0"):
            f(-1)
        with pytest.raises(ValueError, match=rf"\[{name}\] `d` must be non-zero"):
            f(5, 0.0)
        with pytest.raises(TypeError, match=rf"\[{name}\] n must be an integer, got float"):
            f(5.0)
    for name in ("fftshift", "ifftshift"):
        with pytest.raises(IndexError, match=rf"\[{name}\] Invalid axis 2 for array with 2 "
                                             r"dimensions"):
            getattr(F, name)(mx.ones((2, 3)), axes=2)
        with pytest.raises(IndexError, match=r"Invalid axis -3"):
            getattr(F, name)(mx.ones((2, 3)), axes=[0, -3])


def test_stft_errors():
    x = mx.ones((20,))
    with pytest.raises(ValueError, match=r"\[stft\] Input must have at least one dimension"):
        F.stft(mx.array(1.0), n_fft=8)
    with pytest.raises(ValueError, match=r"\[stft\] n_fft must be positive"):
        F.stft(x, n_fft=0)
    with pytest.raises(ValueError, match=r"\[stft\] hop_length must be positive"):
        F.stft(x, n_fft=8, hop_length=0)
    with pytest.raises(ValueError, match=r"\[stft\] hop_length must be positive"):
        F.stft(x, n_fft=1)
    with pytest.raises(ValueError, match=r"\[stft\] window length must not exceed n_fft"):
        F.stft(x, n_fft=8, win_length=9)
    with pytest.raises(ValueError, match=r"\[stft\] window length must not exceed n_fft"):
        F.stft(x, n_fft=8, window=mx.ones((10,)))
    with pytest.raises(ValueError, match=r"\[stft\] window must be a one-dimensional array"):
        F.stft(x, n_fft=8, window=mx.ones((8, 1)))
    with pytest.raises(ValueError, match=r"\[stft\] win_length must be non-negative"):
        F.stft(x, n_fft=8, win_length=-1)
    with pytest.raises(ValueError, match=r"\[stft\] Invalid norm"):
        F.stft(x, n_fft=8, norm="x")
    with pytest.raises(ValueError, match=r"\[stft\] Invalid pad_mode 'wrap'"):
        F.stft(x, n_fft=8, pad_mode="wrap")
    with pytest.raises(ValueError, match=r"\[stft\] Input is too short for the given n_fft"):
        F.stft(mx.ones((5,)), n_fft=8, center=False)


def test_istft_errors():
    s = mx.ones((5, 7), dtype=mx.complex64)
    with pytest.raises(ValueError, match=r"\[istft\] Input must have at least two dimensions "
                                         r"\(freq, frames\)"):
        F.istft(mx.ones((5,), dtype=mx.complex64))
    with pytest.raises(ValueError, match=r"\[istft\] hop_length must be positive"):
        F.istft(s, hop_length=0)
    with pytest.raises(ValueError, match=r"\[istft\] n_fft must be positive"):
        F.istft(s, n_fft=0)
    with pytest.raises(ValueError, match=r"\[istft\] n_fft must be positive"):
        F.istft(mx.ones((1, 7), dtype=mx.complex64))
    with pytest.raises(ValueError, match=r"\[istft\] window must be a one-dimensional array"):
        F.istft(s, window=mx.ones((8, 1)))
    with pytest.raises(ValueError, match=r"\[istft\] window length must not exceed n_fft"):
        F.istft(s, win_length=9)
    with pytest.raises(ValueError, match=r"\[istft\] Invalid norm"):
        F.istft(s, norm="x")
    with pytest.raises(ValueError, match=r"\[istft\] The input has no frames"):
        F.istft(mx.ones((5, 0), dtype=mx.complex64))
    assert F.istft(s, length=-1).shape == (0,)


# ---------------------------------------------------------------------------------------
# gradients: MLX's convention, vjp(ct) = J^H ct, so Re<ct, J t> == Re<vjp(ct), t>
# ---------------------------------------------------------------------------------------
def _complex_rand(shape, cplx, seed):
    x = rand(shape, "float64", seed)
    if cplx:
        x = x + 1j * rand(shape, "float64", seed + 100)
    return x


def _as_mx(x):
    return mx.array(x.astype(np.complex64 if np.iscomplexobj(x) else np.float64))


def check_adjoint(fun, x, seed=0, rtol=2e-4, atol=1e-4):
    """For a linear fun: jvp equals fun itself, vjp is the conjugate transpose, and both
    agree with central differences of fun (exact for a linear map at any step, so a step
    of 1 keeps float32 rounding small)."""
    xm = _as_mx(x)
    out = fun(xm)
    t = _complex_rand(x.shape, np.iscomplexobj(x), seed + 1)
    ct = _complex_rand(out.shape, out.dtype == mx.complex64, seed + 2)
    eps = 1.0
    num = (npa(fun(_as_mx(x + eps * t))).astype(np.complex128) -
           npa(fun(_as_mx(x - eps * t))).astype(np.complex128)) / (2 * eps)
    _, (jt,) = mx.jvp(fun, [xm], [_as_mx(t)])
    np.testing.assert_allclose(npa(jt), num, rtol=rtol, atol=atol, err_msg="jvp")
    _, (g,) = mx.vjp(fun, [xm], [_as_mx(ct)])
    assert g.shape == xm.shape and g.dtype == xm.dtype
    lhs = np.real(np.sum(np.conj(ct) * num))
    rhs = np.real(np.sum(np.conj(npa(g).astype(np.complex128)) * t))
    np.testing.assert_allclose(rhs, lhs, rtol=rtol, atol=atol, err_msg="vjp")


GRAD_CASES = [
    ("fft", {}, True), ("fft", {"n": 9}, False), ("fft", {"n": 3, "axis": 0}, True),
    ("ifft", {"norm": "ortho"}, True), ("ifft", {"norm": "forward"}, False),
    ("fft2", {"s": (3, 5)}, True), ("ifftn", {}, True), ("fftn", {"axes": (1,)}, False),
    ("rfft", {}, False), ("rfft", {"n": 9, "norm": "ortho"}, False), ("rfft", {"axis": 0}, False),
    ("rfft2", {"norm": "forward"}, False), ("rfftn", {"s": (5, 3), "axes": (1, 0)}, False),
    ("irfft", {}, True), ("irfft", {"n": 7}, True), ("irfft", {"n": 8, "norm": "ortho"}, True),
    ("irfft2", {}, True), ("irfftn", {"s": (3, 5), "axes": (0, 1), "norm": "forward"}, True),
    ("fftshift", {}, True), ("ifftshift", {"axes": 0}, False),
]


@pytest.mark.parametrize("name, kw, cplx", GRAD_CASES, ids=str)
def test_grads_adjoint(name, kw, cplx):
    x = _complex_rand((4, 6), cplx, 0)
    check_adjoint(lambda a: getattr(F, name)(a, **kw), x)


def test_grads_match_mlx_formulas():
    # values MLX 0.32 gives: fft's vjp is n * ifft (norm backward), rfft's is the real part of
    # that on the zero-padded cotangent, irfft's is rfft(ct) / n with interior bins doubled
    rng = np.random.default_rng(0)
    n = 6
    xc = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    xr = rng.standard_normal(n).astype(np.float32)
    ct = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    g = mx.vjp(F.fft, [mx.array(xc)], [mx.array(ct)])[1][0]
    np.testing.assert_allclose(npa(g), n * np.fft.ifft(ct), rtol=1e-5, atol=1e-5)
    g = mx.vjp(F.rfft, [mx.array(xr)], [mx.array(ct[:4])])[1][0]
    full = np.concatenate([ct[:4], np.zeros(2)])
    assert g.dtype == mx.float32
    np.testing.assert_allclose(npa(g), (n * np.fft.ifft(full)).real, rtol=1e-5, atol=1e-5)
    g = mx.vjp(F.irfft, [mx.array(xc[:4])], [mx.array(xr)])[1][0]
    want = np.fft.rfft(xr) / n * np.array([1, 2, 2, 1])
    np.testing.assert_allclose(npa(g), want, rtol=1e-5, atol=1e-6)


def test_grad_of_real_loss():
    # a real loss of a real input does not depend on the complex convention
    x = rand((8,), "float64", 3)

    def loss(a):
        return mx.sum(mx.square(mx.real(F.rfft(a)))) + mx.sum(F.irfft(F.rfft(a) * 2.0))

    g = mx.grad(loss)(mx.array(x))
    eps = 0.5  # the loss is quadratic: central differences are exact
    num = [(float(loss(mx.array(x + eps * e))) - float(loss(mx.array(x - eps * e)))) / (2 * eps)
           for e in np.eye(8)]
    np.testing.assert_allclose(npa(g), num, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kw", [{"n_fft": 8, "hop_length": 3}, {"n_fft": 8, "center": False},
                                {"n_fft": 6, "window": np.hanning(6), "pad_mode": "edge"}],
                         ids=kw_id)
def test_stft_grads(kw):
    mkw = {k: (mx.array(v.astype(np.float32)) if isinstance(v, np.ndarray) else v)
           for k, v in kw.items()}
    check_adjoint(lambda a: F.stft(a, **mkw), rand((20,), "float64", 1))
    check_adjoint(lambda a: F.stft(a, **mkw), _complex_rand((20,), True, 2))


@pytest.mark.parametrize("kw", [{"hop_length": 2}, {"hop_length": 3, "center": False, "length": 12},
                                {"n_fft": 8, "hop_length": 2, "onesided": False}], ids=str)
def test_istft_grads(kw):
    shape = (8, 7) if kw.get("onesided") is False else (5, 7)
    check_adjoint(lambda a: F.istft(a, **kw), _complex_rand(shape, True, 3))


def test_grad_through_window():
    # the window is an input too (a loss linear in the spectrum's real part)
    x = mx.array(rand((16,), "float32", 4))
    c = mx.array(rand((3, 9), "float32", 5))

    def loss(w):
        return mx.sum(mx.real(F.stft(x, n_fft=4, hop_length=2, window=w)) * c)

    w = mx.array(np.hanning(4).astype(np.float32))
    g = mx.grad(loss)(w)
    eps = 0.5  # linear in w: central differences are exact
    num = [(float(loss(w + eps * mx.array(e))) - float(loss(w - eps * mx.array(e)))) / (2 * eps)
           for e in np.eye(4, dtype=np.float32)]
    np.testing.assert_allclose(npa(g), num, rtol=1e-4, atol=1e-4)


def test_grad_of_spectral_power():
    x = rand((16,), "float32", 4)

    def loss(a):
        return mx.sum(mx.abs(F.rfft(a)) ** 2)

    g = mx.grad(loss)(mx.array(x))
    eps = 0.5  # quadratic: central differences are exact
    num = [(float(loss(mx.array(x + eps * e))) - float(loss(mx.array(x - eps * e)))) / (2 * eps)
           for e in np.eye(16, dtype=np.float32)]
    np.testing.assert_allclose(npa(g), num, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------
VMAP_CASES = [("fft", {}), ("ifft", {"n": 5, "axis": 0}), ("fft2", {}), ("fftn", {"axes": (1,)}),
              ("rfft", {"n": 7}), ("rfftn", {}), ("irfft", {}),
              ("irfftn", {"s": (3, 4), "axes": (1, 0)}),
              ("fftshift", {}), ("stft", {"n_fft": 4, "hop_length": 2}),
              ("istft", {"hop_length": 1})]


@pytest.mark.parametrize("name, kw", VMAP_CASES, ids=str)
@pytest.mark.parametrize("in_axis", [0, 2])
def test_vmap(name, kw, in_axis):
    cplx = name.startswith("i") and name != "ifftshift" or name == "istft"
    x = _complex_rand((3, 4, 6) if name != "stft" else (3, 12, 2), cplx, 5)
    xm = mx.array(x.astype(np.complex64 if cplx else np.float32))
    f = lambda a: getattr(F, name)(a, **kw)  # noqa: E731
    got = mx.vmap(f, in_axes=in_axis)(xm)
    want = mx.stack([f(mx.take(xm, i, axis=in_axis)) for i in range(xm.shape[in_axis])])
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(npa(got), npa(want), rtol=1e-5, atol=1e-5)


def test_vmap_out_axis_and_grad_of_vmap():
    x = mx.array(rand((3, 8), "float32", 6))
    got = mx.vmap(F.rfft, in_axes=0, out_axes=1)(x)
    np.testing.assert_allclose(npa(got), np.fft.rfft(npa(x)).T, rtol=1e-5, atol=1e-5)
    g = mx.grad(lambda a: mx.sum(mx.real(mx.vmap(F.rfft)(a))))(x)
    g2 = mx.grad(lambda a: mx.sum(mx.real(F.rfft(a))))(x)
    np.testing.assert_allclose(npa(g), npa(g2), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------
@HYP
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data(),
       norm=st.sampled_from(["backward", "ortho", "forward"]))
def test_property_fftn_matches_numpy(shape, data, norm):
    nd = len(shape)
    axes = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd,
                              unique_by=lambda a: a % nd))
    s = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 6), min_size=len(axes),
                                                max_size=len(axes))))
    x = rand(tuple(shape), "float32", data.draw(st.integers(0, 1000)))
    for name in ("fftn", "rfftn", "ifftn"):
        want = getattr(np.fft, name)(x, s=s, axes=axes, norm=norm)
        assert_same(getattr(F, name)(mxa(x), s=s, axes=axes, norm=norm),
                    want.astype(np.complex64), rtol=1e-4, atol=1e-4)
    spec = np.fft.rfftn(x, axes=axes)
    if s is None and spec.shape[axes[-1]] == 1:
        # the default output length 2 * (1 - 1) is empty
        with pytest.raises(ValueError, match=r"Invalid FFT output size requested \(0\)"):
            F.irfftn(mx.array(spec.astype(np.complex64)), axes=axes)
        return
    want = np.fft.irfftn(spec, s=s, axes=axes, norm=norm)
    assert_same(F.irfftn(mx.array(spec.astype(np.complex64)), s=s, axes=axes, norm=norm),
                want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_module_surface():
    names = {"fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
             "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift", "stft", "istft"}
    assert set(fft_mod.__all__) == names
    for n in names:
        assert getattr(F, n).__doc__
