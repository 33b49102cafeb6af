"""Finite-difference checks of vjp and jvp in float64 (shared by the transform tests)."""
import numpy as np

import mx.core as mx


def _np(x):
    return np.asarray(x).astype(np.float64)


def numeric_jvp(fun, primals, tangents, eps=1e-6):
    """Central difference of fun along `tangents` (lists of float64 mx arrays)."""
    plus = fun(*[p + eps * t for p, t in zip(primals, tangents)])
    minus = fun(*[p - eps * t for p, t in zip(primals, tangents)])
    plus = [plus] if isinstance(plus, mx.array) else plus
    minus = [minus] if isinstance(minus, mx.array) else minus
    return [(_np(a) - _np(b)) / (2 * eps) for a, b in zip(plus, minus)]


def check_grads(fun, primals, seed=0, rtol=1e-5, atol=1e-6):
    """vjp and jvp of fun at primals (float64 arrays) against central differences:
    <ct, J t> computed three ways must agree."""
    rng = np.random.default_rng(seed)
    primals = [mx.array(p, dtype=mx.float64) if not isinstance(p, mx.array) else p for p in primals]
    tangents = [mx.array(rng.standard_normal(p.shape), dtype=mx.float64) for p in primals]
    outs = fun(*primals)
    outs = [outs] if isinstance(outs, mx.array) else list(outs)
    cts = [mx.array(rng.standard_normal(o.shape), dtype=mx.float64) for o in outs]
    num = numeric_jvp(fun, primals, tangents)
    # jvp
    _, jv = mx.jvp(fun, primals, tangents)
    for a, b in zip(jv, num):
        np.testing.assert_allclose(_np(a), b, rtol=rtol, atol=atol, err_msg="jvp")
    # vjp: <ct, J t> == <J^T ct, t>
    _, vj = mx.vjp(fun, primals, cts)
    lhs = sum(float(np.sum(_np(c) * n)) for c, n in zip(cts, num))
    rhs = sum(float(np.sum(_np(g) * _np(t))) for g, t in zip(vj, tangents))
    np.testing.assert_allclose(rhs, lhs, rtol=rtol, atol=atol, err_msg="vjp")
    for g, p in zip(vj, primals):
        assert g.shape == p.shape, (g.shape, p.shape)


def check_vmap(fun, inputs, in_axes=0, rtol=1e-6, atol=1e-6):
    """vmap(fun) against a Python loop over the mapped axis, stacked."""
    axes = in_axes if isinstance(in_axes, (list, tuple)) else [in_axes] * len(inputs)
    size = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
    got = mx.vmap(fun, in_axes=tuple(axes))(*inputs)
    per = []
    for i in range(size):
        args = [x if a is None else mx.take(x, i, axis=a) for x, a in zip(inputs, axes)]
        per.append(fun(*args))
    if isinstance(got, mx.array):
        want = mx.stack(per)
        assert got.shape == want.shape, (got.shape, want.shape)
        np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=atol)
    else:
        for k, g in enumerate(got):
            want = mx.stack([p[k] for p in per])
            assert g.shape == want.shape
            np.testing.assert_allclose(_np(g), _np(want), rtol=rtol, atol=atol)
