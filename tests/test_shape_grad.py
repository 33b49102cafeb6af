"""vjp, jvp and vmap rules of the shape primitives (mx/core/ops/shape.py).

Every shape primitive is linear in its array inputs, so a central difference in float64
gives its Jacobian J exactly (up to rounding); vjp must equal J^T u and jvp J v. vmap is
checked against a Python loop over the mapped axis followed by mx.stack.
"""
from functools import reduce

import numpy as np
import pytest

import mx.core as mx
import mx.core.ops.shape as S

EPS = 1e-6


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np(x):
    return np.asarray(x).astype(np.float64)


def _as_list(out):
    return [out] if isinstance(out, mx.array) else list(out)


def _jacobian(fun, inputs):
    """Central-difference Jacobian of fun's (flattened, concatenated) outputs with respect
    to its (flattened, concatenated) float64 inputs."""
    cols = []
    for k, x in enumerate(inputs):
        for i in range(x.size):
            step = np.zeros(x.size)
            step[i] = EPS
            step = step.reshape(x.shape)

            def at(sign):
                args = [mx.array(y + sign * step if j == k else y, dtype=mx.float64)
                        for j, y in enumerate(inputs)]
                return np.concatenate([_np(o).ravel() for o in _as_list(fun(*args))])

            cols.append((at(1) - at(-1)) / (2 * EPS))
    return np.stack(cols, axis=1)


def check_rules(fun, *inputs, seed=0):
    """vjp and jvp of fun at the float64 `inputs` against the finite-difference Jacobian."""
    inputs = [np.asarray(x, np.float64) for x in inputs]
    primals = [mx.array(x, dtype=mx.float64) for x in inputs]
    outs = _as_list(fun(*primals))
    jac = _jacobian(fun, inputs)
    rng = np.random.default_rng(seed + 1)
    cts = [rng.standard_normal(o.shape) for o in outs]
    tans = [rng.standard_normal(x.shape) for x in inputs]

    _, grads = mx.vjp(fun, primals, [mx.array(c, dtype=mx.float64) for c in cts])
    for g, x in zip(grads, inputs):
        assert g.shape == x.shape and g.dtype == mx.float64
    got = np.concatenate([_np(g).ravel() for g in grads])
    want = jac.T @ np.concatenate([c.ravel() for c in cts])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg="vjp")

    _, jv = mx.jvp(fun, primals, [mx.array(t, dtype=mx.float64) for t in tans])
    for t, o in zip(jv, outs):
        assert t.shape == o.shape
    got = np.concatenate([_np(t).ravel() for t in jv])
    want = jac @ np.concatenate([t.ravel() for t in tans])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg="jvp")


def check_vmap(fun, *inputs, in_axes=0):
    """mx.vmap(fun) against fun applied to each example and stacked."""
    axes = list(in_axes) if isinstance(in_axes, (list, tuple)) else [in_axes] * len(inputs)
    size = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
    per = [fun(*[mx.array(x if a is None else np.take(x, i, axis=a)) for x, a in zip(inputs, axes)])
           for i in range(size)]
    got = mx.vmap(fun, in_axes=tuple(axes))(*[mx.array(x) for x in inputs])
    for k, g in enumerate(_as_list(got)):
        want = mx.stack([_as_list(p)[k] for p in per])
        assert g.shape == want.shape, (g.shape, want.shape)
        assert g.dtype == want.dtype
        np.testing.assert_allclose(_np(g), _np(want), rtol=1e-6, atol=1e-6)


def _total(y):
    """The sum of y's elements, built only from shape primitives and additions (so that
    these tests need no reduction rules)."""
    return reduce(lambda a, b: a + b, mx.unstack(mx.reshape(y, (-1,))))


# ---------------------------------------------------------------------------------------
# one (name, function, input shapes) per parameter setting
# ---------------------------------------------------------------------------------------
def _strided_slice(index, shape):
    """split_slice with a general basic index (split and unstack only make simple ones)."""
    return lambda x: S._slice(x, index, shape, None)


CASES = [
    ("reshape", lambda x: mx.reshape(x, (4, 6)), [(2, 3, 4)]),
    ("reshape_infer", lambda x: mx.reshape(x, (-1,)), [(2, 3, 4)]),
    ("reshape_0d", lambda x: mx.reshape(x, (1, 1)), [()]),
    ("flatten", lambda x: mx.flatten(x, 1, 2), [(2, 3, 4)]),
    ("squeeze", lambda x: mx.squeeze(x), [(3, 1, 2, 1)]),
    ("expand_dims", lambda x: mx.expand_dims(x, (0, 2)), [(3, 2)]),
    ("transpose", lambda x: mx.transpose(x), [(2, 3, 4)]),
    ("transpose_axes", lambda x: mx.transpose(x, (1, 2, 0)), [(2, 3, 4)]),
    ("swapaxes", lambda x: mx.swapaxes(x, 0, -1), [(2, 3, 4)]),
    ("moveaxis", lambda x: mx.moveaxis(x, 2, 0), [(2, 3, 4)]),
    ("broadcast_to", lambda x: mx.broadcast_to(x, (2, 3, 4)), [(3, 1)]),
    ("broadcast_row", lambda x: mx.broadcast_to(x, (3, 4)), [(4,)]),
    ("broadcast_scalar", lambda x: mx.broadcast_to(x, (2, 2)), [()]),
    ("broadcast_arrays", lambda a, b: mx.broadcast_arrays(a, b), [(3, 1), (1, 4)]),
    ("split_equal", lambda x: mx.split(x, 3, axis=1), [(2, 6)]),
    ("split_indices", lambda x: mx.split(x, [1, 3], axis=0), [(5, 2)]),
    ("split_past_end", lambda x: mx.split(x, [2, 10]), [(4, 3)]),
    ("unstack", lambda x: mx.unstack(x, axis=1), [(2, 3, 2)]),
    ("slice_step", _strided_slice((slice(None), slice(1, None, 2)), (3, 3)), [(3, 6)]),
    ("slice_neg_step", _strided_slice((slice(None, None, -3), -2), (3,)), [(7, 4)]),
    ("slice_empty", _strided_slice((slice(3, 1),), (0, 2)), [(4, 2)]),
    ("flip_all", lambda x: mx.flip(x), [(2, 3, 4)]),
    ("flip_axes", lambda x: mx.flip(x, (0, 2)), [(2, 3, 4)]),
    ("concatenate", lambda a, b, c: mx.concatenate([a, b, c], axis=1), [(2, 1), (2, 3), (2, 2)]),
    ("concatenate_none", lambda a, b: mx.concatenate([a, b], axis=None), [(2, 2), (3,)]),
    ("concatenate_one", lambda a: mx.concatenate([a]), [(3, 2)]),
    ("stack", lambda a, b: mx.stack([a, b]), [(2, 3), (2, 3)]),
    ("stack_last", lambda a, b, c: mx.stack([a, b, c], axis=-1), [(2, 3), (2, 3), (2, 3)]),
    ("tile", lambda x: mx.tile(x, (2, 3)), [(2, 2)]),
    ("tile_longer_reps", lambda x: mx.tile(x, (2, 1, 3)), [(3, 2)]),
    ("tile_shorter_reps", lambda x: mx.tile(x, 2), [(2, 3)]),
    ("tile_zero", lambda x: mx.tile(x, (0, 2)), [(2, 3)]),
    ("repeat_flat", lambda x: mx.repeat(x, 3), [(2, 3)]),
    ("repeat_axis", lambda x: mx.repeat(x, 2, axis=1), [(2, 3, 2)]),
    ("pad_constant", lambda x: mx.pad(x, ((1, 2), (0, 3))), [(2, 3)]),
    ("pad_value", lambda x, v: mx.pad(x, ((1, 0), (2, 1)), constant_values=v), [(2, 3), ()]),
    ("pad_edge", lambda x: mx.pad(x, ((2, 1), (1, 3)), mode="edge"), [(2, 3)]),
    ("pad_reflect", lambda x: mx.pad(x, 2, mode="reflect"), [(3, 4)]),
    ("pad_reflect_wide", lambda x: mx.pad(x, (7, 5), mode="reflect"), [(3,)]),
    ("pad_symmetric_wide", lambda x: mx.pad(x, ((4, 6), (1, 1)), mode="symmetric"), [(3, 2)]),
    ("pad_reflect_single", lambda x: mx.pad(x, ((2, 1), (0, 0)), mode="reflect"), [(1, 3)]),
    ("pad_0d", lambda x, v: mx.pad(x, 2, constant_values=v), [(), ()]),
    ("roll_flat", lambda x: mx.roll(x, 5), [(3, 4)]),
    ("roll_axis", lambda x: mx.roll(x, -2, axis=1), [(3, 4)]),
    ("roll_axes", lambda x: mx.roll(x, (1, 3), axis=(0, 2)), [(3, 2, 4)]),
    ("tril", lambda x: mx.tril(x), [(4, 4)]),
    ("tril_k", lambda x: mx.tril(x, -1), [(2, 3, 4)]),
    ("triu", lambda x: mx.triu(x), [(4, 3)]),
    ("triu_k", lambda x: mx.triu(x, 2), [(2, 3, 5)]),
    ("diff", lambda x: mx.diff(x), [(3, 5)]),
    ("diff_n2_axis0", lambda x: mx.diff(x, 2, axis=0), [(5, 3)]),
    ("diff_n3", lambda x: mx.diff(x, 3), [(2, 6)]),
    ("diff_n0", lambda x: mx.diff(x, 0), [(2, 3)]),
    ("diff_too_far", lambda x: mx.diff(x, 5), [(2, 3)]),
    ("diff_exact_length", lambda x: mx.diff(x, 3), [(2, 3)]),
    ("as_strided_windows", lambda x: mx.as_strided(x, (4, 3), (2, 1), 1), [(3, 4)]),
    ("as_strided_stride0", lambda x: mx.as_strided(x, (3, 2), (0, 5), 2), [(10,)]),
    ("as_strided_negative", lambda x: mx.as_strided(x, (4,), (-2,), 7), [(2, 4)]),
    ("as_strided_default", lambda x: mx.as_strided(x), [(2, 3)]),
    ("contiguous", lambda x: mx.contiguous(mx.transpose(x)), [(3, 4)]),
    ("contiguous_col", lambda x: mx.contiguous(x, True), [(3, 4)]),
]


@pytest.mark.parametrize("name, fun, shapes", CASES, ids=[c[0] for c in CASES])
def test_vjp_jvp_finite_differences(name, fun, shapes):
    check_rules(fun, *[_rand(s, seed=i) for i, s in enumerate(shapes)])


def test_mixed_dtypes_get_cotangents_in_their_own_dtype():
    a = mx.array(_rand((2, 2)), dtype=mx.float32)
    b = mx.array(_rand((3, 2)), dtype=mx.float64)
    ct = mx.array(_rand((5, 2), seed=3), dtype=mx.float64)
    _, (ga, gb) = mx.vjp(lambda a, b: mx.concatenate([a, b]), [a, b], [ct])
    assert ga.dtype == mx.float32 and gb.dtype == mx.float64
    np.testing.assert_allclose(_np(ga), _np(ct)[:2], rtol=1e-6)
    np.testing.assert_allclose(_np(gb), _np(ct)[2:])


def test_bool_diff_has_no_derivative():
    x = mx.array(np.array([[True, False, False, True]]))
    _, (t,) = mx.jvp(lambda x: mx.diff(x), [x], [x])
    assert t.shape == (1, 3) and not np.asarray(t).any()
    _, (g,) = mx.vjp(lambda x: mx.diff(x), [x], [mx.ones((1, 3), dtype=mx.bool_)])
    assert g.shape == (1, 4) and not np.asarray(g).any()


def test_as_strided_add_rules():
    """The transpose of as_strided (its vjp's primitive) has rules of its own: check them
    by differentiating and batching the vjp as a function of the cotangent."""
    x0 = mx.array(_rand((3, 4)), dtype=mx.float64)

    def pullback(c):
        return mx.vjp(lambda x: mx.as_strided(x, (3, 3), (2, 1), 1), [x0], [c])[1][0]

    check_rules(pullback, _rand((3, 3), seed=5))
    check_vmap(pullback, _rand((3, 3, 2), seed=6), in_axes=2)
    # windows 1-3, 3-5, 5-7 overlap at 3 and 5, where the ones add up
    g = pullback(mx.ones((3, 3), dtype=mx.float64))
    assert np.asarray(g).ravel().tolist() == [0, 1, 1, 2, 1, 2, 1, 1, 0, 0, 0, 0]


# ---------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------
VMAP_CASES = [
    ("reshape", lambda x: mx.reshape(x, (3, 2)), [(4, 2, 3)], 0),
    ("reshape_axis1", lambda x: mx.reshape(x, (-1,)), [(2, 4, 3)], 1),
    ("reshape_0d", lambda x: mx.reshape(x, (1,)), [(5,)], 0),
    ("transpose", lambda x: mx.transpose(x, (2, 0, 1)), [(2, 3, 4, 5)], 2),
    ("moveaxis", lambda x: mx.moveaxis(x, 0, -1), [(2, 3, 4)], -1),
    ("broadcast_to", lambda x: mx.broadcast_to(x, (2, 3, 4)), [(3, 1, 5)], 2),
    ("broadcast_scalar", lambda x: mx.broadcast_to(x, (2, 3)), [(4,)], 0),
    ("broadcast_arrays", lambda a, b: mx.broadcast_arrays(a, b), [(3, 4), (3,)], (1, None)),
    ("split", lambda x: mx.split(x, [1, 3], axis=1), [(2, 3, 5)], 1),
    ("unstack", lambda x: mx.unstack(x, axis=-1), [(2, 3, 4)], 0),
    ("slice_step", _strided_slice((slice(None, None, -2), 1), (2,)), [(3, 4, 2)], 2),
    ("flip", lambda x: mx.flip(x, 0), [(2, 3, 4)], 1),
    ("flip_all", lambda x: mx.flip(x), [(2, 3, 4)], 0),
    ("concatenate", lambda a, b: mx.concatenate([a, b], axis=1), [(2, 3, 2), (3, 1, 2)], (0, 2)),
    ("concatenate_unbatched", lambda a, b, c: mx.concatenate([a, b, c], axis=-1),
     [(2, 2), (4, 2, 3), (2, 1)], (None, 0, None)),
    ("concatenate_flat", lambda a, b: mx.concatenate([a, b], axis=None), [(3, 2, 2), (3,)],
     (0, None)),
    ("stack", lambda a, b: mx.stack([a, b], axis=1), [(3, 2, 4), (2, 3, 4)], (1, 0)),
    ("stack_unbatched", lambda a, b: mx.stack([a, b], axis=-1), [(2,), (2, 3)], (None, 1)),
    ("tile", lambda x: mx.tile(x, (2, 1, 3)), [(3, 2, 2)], 1),
    ("repeat_flat", lambda x: mx.repeat(x, 2), [(3, 2, 2)], 2),
    ("repeat_axis", lambda x: mx.repeat(x, 3, axis=0), [(2, 3, 2)], 0),
    ("pad", lambda x: mx.pad(x, ((1, 2), (0, 1))), [(2, 3, 2)], 1),
    ("pad_reflect", lambda x: mx.pad(x, 3, mode="reflect"), [(2, 3, 2)], 0),
    ("pad_edge_0d", lambda x: mx.pad(x, 2, mode="edge"), [(3,)], 0),
    ("pad_batched_value", lambda x, v: mx.pad(x, ((1, 0), (1, 1)), constant_values=v),
     [(3, 2, 2), (3,)], (0, 0)),
    ("pad_unbatched_x", lambda x, v: mx.pad(x, 1, constant_values=v), [(2, 2), (4,)], (None, 0)),
    ("pad_value_1d", lambda x, v: mx.pad(x, 1, constant_values=v), [(3,), (3,)], (None, 0)),
    ("pad_value_0d_x", lambda x, v: mx.pad(x, 1, constant_values=v), [(), (3,)], (None, 0)),
    ("pad_value_edge", lambda x, v: mx.pad(x, 1, mode="edge", constant_values=v),
     [(3, 2), (3,)], (0, 0)),
    ("roll_flat", lambda x: mx.roll(x, 3), [(2, 3, 4)], 1),
    ("roll_axes", lambda x: mx.roll(x, (1, -1), axis=(0, 1)), [(3, 4, 2)], 2),
    ("tril", lambda x: mx.tril(x, 1), [(3, 4, 3)], 0),
    ("triu", lambda x: mx.triu(x, -1), [(4, 3, 2)], 2),
    ("diff", lambda x: mx.diff(x, 2, axis=0), [(5, 2, 3)], 1),
    ("as_strided", lambda x: mx.as_strided(x, (3, 2), (1, 2), 1), [(2, 3, 3)], 2),
    ("as_strided_negative", lambda x: mx.as_strided(x, (3,), (-2,), 5), [(6, 3)], 1),
    ("contiguous", lambda x: mx.contiguous(mx.swapaxes(x, 0, 1)), [(2, 3, 4)], 1),
]


@pytest.mark.parametrize("name, fun, shapes, in_axes", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
def test_vmap_matches_loop(name, fun, shapes, in_axes):
    check_vmap(fun, *[_rand(s, seed=i) for i, s in enumerate(shapes)], in_axes=in_axes)


def test_vmap_of_vjp_through_slices_and_pads():
    """Rules compose: batching the pullbacks batches the graphs the vjp rules built."""
    x0 = mx.array(_rand((4, 5)), dtype=mx.float64)

    def pullback(fun):
        return lambda c: mx.vjp(fun, [x0], [c])[1][0]

    cases = [
        (lambda x: S._slice(x, (slice(4, 0, -2),), (2, 5), None), (2, 5)),
        (lambda x: mx.unstack(x)[2], (5,)),
        (lambda x: mx.pad(x, ((1, 2), (3, 1)), mode="symmetric"), (7, 9)),
        (lambda x: mx.roll(x, 2), (4, 5)),
        (lambda x: mx.diff(x, 2), (4, 3)),
    ]
    for fun, shape in cases:
        check_vmap(pullback(fun), _rand((3,) + shape, seed=7), in_axes=0)


# ---------------------------------------------------------------------------------------
# higher order
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [
    lambda x: mx.transpose(mx.reshape(x, (3, 2)), (1, 0)),
    lambda x: mx.pad(x, ((1, 1), (2, 0)), mode="reflect"),
    lambda x: mx.concatenate([x, mx.flip(x, 1)], axis=0),
    lambda x: mx.as_strided(x, (2, 3), (1, 2), 0),
    lambda x: mx.roll(mx.tril(x), 1, axis=1),
], ids=["reshape_transpose", "pad_reflect", "concatenate_flip", "as_strided", "roll_tril"])
def test_grad_of_grad(op):
    """f(x) = sum(op(x)^3) has a nonlinear gradient; differentiate <grad f(x), w>."""
    w = mx.array(_rand((2, 3), seed=9), dtype=mx.float64)
    g = mx.grad(lambda x: _total(op(x) ** 3))
    h = lambda x: _total(g(x) * w)  # noqa: E731
    x = _rand((2, 3), seed=4)
    got = _np(mx.grad(h)(mx.array(x, dtype=mx.float64)))
    want = _jacobian(h, [x]).ravel()
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5, atol=1e-6)
    # and forward over reverse agrees with it
    v = _rand((2, 3), seed=8)
    _, (jv,) = mx.jvp(h, [mx.array(x, dtype=mx.float64)], [mx.array(v, dtype=mx.float64)])
    np.testing.assert_allclose(float(_np(jv)), float(want @ v.ravel()), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# completeness
# ---------------------------------------------------------------------------------------
def _module_primitives():
    return {v.name: v for v in vars(S).values() if isinstance(v, mx.Primitive)}


def test_every_shape_primitive_has_all_three_rules():
    prims = _module_primitives()
    expected = {"reshape", "transpose", "broadcast_to", "split_slice", "flip", "concatenate",
                "stack", "tile", "repeat", "pad", "roll", "tril", "triu", "diff", "as_strided",
                "contiguous", "as_strided_add"}
    assert expected <= set(prims)
    missing = [(n, r) for n, p in prims.items() for r in ("vjp", "jvp", "vmap")
               if getattr(p, r) is None]
    assert not missing, missing


def test_every_shape_primitive_is_exercised():
    """Each primitive of the module appears in the graphs of the cases above, so a new
    primitive needs a test here."""
    seen = set()

    def walk(a):
        stack = [a]
        while stack:
            n = stack.pop()
            if n._prim is not None:
                seen.add(n._prim.name)
                stack.extend(n._inputs)

    for _, fun, shapes in CASES:
        for o in _as_list(fun(*[mx.array(_rand(s)) for s in shapes])):
            walk(o)
    x0 = mx.array(_rand((6,)))
    _, (g,) = mx.vjp(lambda x: mx.as_strided(x, (2,), (2,), 0), [x0], [mx.ones((2,))])
    walk(g)
    assert set(_module_primitives()) <= seen, set(_module_primitives()) - seen
