"""grad, value_and_grad, vjp, jvp, vmap, custom_function, checkpoint: MLX's semantics,
finite-difference checks of the elementwise rules, and rule completeness over the registry."""
import gc
import math

import numpy as np
import pytest

import mx.core as mx
from mx.core.primitives import REGISTRY
from gradcheck import check_grads, check_vmap

UNARY_DOMAINS = {
    "abs": (0.2, 2), "negative": (-2, 2), "exp": (-2, 2), "expm1": (-1, 1), "log": (0.2, 3),
    "log2": (0.2, 3), "log10": (0.2, 3), "log1p": (-0.5, 3), "sqrt": (0.2, 3), "rsqrt": (0.2, 3),
    "square": (-2, 2), "reciprocal": (0.3, 3), "sin": (-3, 3), "cos": (-3, 3), "tan": (-1, 1),
    "arcsin": (-0.8, 0.8), "arccos": (-0.8, 0.8), "arctan": (-3, 3), "sinh": (-2, 2),
    "cosh": (-2, 2), "tanh": (-2, 2), "arcsinh": (-2, 2), "arccosh": (1.2, 3),
    "arctanh": (-0.8, 0.8), "sigmoid": (-4, 4), "erf": (-2, 2), "erfinv": (-0.8, 0.8),
    "degrees": (-2, 2), "radians": (-2, 2), "copy": (-2, 2),
}


def _rand(shape, lo=-1.0, hi=1.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


@pytest.mark.parametrize("op", sorted(UNARY_DOMAINS))
def test_unary_rules_finite_differences(op):
    lo, hi = UNARY_DOMAINS[op]
    fn = getattr(mx, op)
    check_grads(fn, [_rand((3, 4), lo, hi)])


@pytest.mark.parametrize("op, lo, hi", [
    ("add", -2, 2), ("subtract", -2, 2), ("multiply", -2, 2), ("divide", 0.5, 2),
    ("power", 0.5, 2), ("maximum", -2, 2), ("minimum", -2, 2), ("logaddexp", -3, 3),
    ("arctan2", 0.3, 2), ("remainder", 0.3, 0.9),
])
def test_binary_rules_finite_differences(op, lo, hi):
    fn = getattr(mx, op)
    # broadcasting: (3, 4) with (4,)
    check_grads(fn, [_rand((3, 4), lo, hi, 1), _rand((4,), lo, hi, 2) + (1.0 if op == "remainder" else 0)])


def test_where_and_casts_finite_differences():
    cond = mx.array(np.array([[True, False, True, False]] * 3))
    check_grads(lambda a, b: mx.where(cond, a, b), [_rand((3, 4)), _rand((3, 4), seed=3)])
    check_grads(lambda a: mx.clip(a, -0.5, 0.5) * 2, [_rand((5,))])
    # through a cast the cotangent comes back in the input's dtype
    g = mx.grad(lambda a: (a.astype(mx.float32) * 3).sum())(mx.array([1.0, 2.0], mx.float64))
    assert g.dtype == mx.float64 and g.tolist() == [3.0, 3.0]


def test_grad_of_grad_and_third_derivative():
    assert mx.grad(mx.grad(mx.sin))(mx.array(1.0)).item() == pytest.approx(-math.sin(1.0), rel=1e-5)
    assert mx.grad(mx.grad(mx.grad(mx.sin)))(mx.array(1.0)).item() == pytest.approx(-math.cos(1.0), rel=1e-5)
    f = lambda x: x * x * x
    assert mx.grad(mx.grad(f))(mx.array(2.0)).item() == pytest.approx(12.0)
    assert mx.grad(mx.grad(mx.grad(f)))(mx.array(2.0)).item() == pytest.approx(6.0)


def test_grad_argnums_argnames_semantics():
    def f(x, y, z=None):
        return x * y * z

    x, y, z = mx.array(2.0), mx.array(3.0), mx.array(4.0)
    v, (gx, gy) = mx.value_and_grad(f, argnums=[0, 1])(x, y, z=z)
    assert v.item() == 24 and gx.item() == 12 and gy.item() == 8
    v, (g0, named) = mx.value_and_grad(f, argnums=0, argnames="z")(x, y, z=z)
    assert g0.item() == 12 and named["z"].item() == 6
    _, (none, named) = mx.value_and_grad(f, argnames="z")(x, y, z=z)
    assert none is None and named["z"].item() == 6
    assert mx.grad(f, argnums=[0])(x, y, z=z).item() == 12  # one argnum: its tree
    assert mx.grad(f)(x, y, z=z).item() == 12


def test_argnums_by_keyword_and_argnames_positionally():
    def f(x, y):
        return x * y * y

    # argnum 1 passed by keyword
    assert mx.grad(f, argnums=1)(mx.array(2.0), y=mx.array(3.0)).item() == 12
    # argname passed positionally
    _, (_, named) = mx.value_and_grad(f, argnums=[], argnames="y")(mx.array(2.0), mx.array(3.0))
    assert named["y"].item() == 12


def test_python_numbers_are_differentiable_arguments():
    g = mx.grad(lambda x, y: x * y)(2.0, mx.array(3.0))
    assert isinstance(g, mx.array) and g.item() == 3.0


def test_pytrees_in_and_out():
    params = {"w": mx.array([1.0, 2.0]), "b": [mx.array(0.5), (mx.array(1.0),)]}

    def loss(p):
        return (p["w"] * p["w"]).sum() + p["b"][0] * 3 + p["b"][1][0]

    g = mx.grad(loss)(params)
    assert set(g) == {"w", "b"} and isinstance(g["b"], list) and isinstance(g["b"][1], tuple)
    assert g["w"].tolist() == [2.0, 4.0] and g["b"][0].item() == 3 and g["b"][1][0].item() == 1


def test_aux_outputs_come_back_untouched():
    def lasso(w, x):
        r = x * w - 1
        mse = (r * r).mean()
        l1 = mx.abs(r).mean()
        return mse + l1, mse, l1

    (loss, mse, l1), g = mx.value_and_grad(lasso)(mx.array([1.0, 2.0]), mx.array([1.0, 1.0]))
    assert loss.item() == pytest.approx(mse.item() + l1.item())
    assert g.shape == (2,)


def test_errors():
    with pytest.raises(ValueError, match=r"\[value_and_grad\].*scalar loss.*shape \(2\)"):
        mx.grad(lambda x: x * 2)(mx.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"argument index 3"):
        mx.grad(lambda x: x, argnums=3)(mx.array(1.0))
    with pytest.raises(ValueError, match=r"keyword argument 'q'"):
        mx.grad(lambda x, q=None: x, argnames="q")(mx.array(1.0))
    with pytest.raises(TypeError, match=r"\[value_and_grad\] fun must be callable"):
        mx.grad(3)
    with pytest.raises(ValueError, match=r"\[vjp\] Cotangent shape"):
        mx.vjp(lambda x: x * 2, [mx.array([1.0, 2.0])], [mx.array([1.0])])
    with pytest.raises(ValueError, match=r"\[jvp\] Tangent shape"):
        mx.jvp(lambda x: x * 2, [mx.array([1.0, 2.0])], [mx.array([1.0])])


def test_missing_rule_is_a_clear_error():
    from mx.core.primitives import declare
    from mx.core._array import make_node
    p = REGISTRY.get("test_no_rules") or declare("test_no_rules", cpu=lambda x: x * 2)

    def f(x):
        return make_node(p, (x,), None, x.shape, x.dtype)

    with pytest.raises(ValueError, match=r"\[vjp\] Primitive 'test_no_rules' has no vjp rule"):
        mx.grad(lambda x: f(x))(mx.array(1.0))
    with pytest.raises(ValueError, match=r"\[jvp\] Primitive 'test_no_rules' has no jvp rule"):
        mx.jvp(f, [mx.array(1.0)], [mx.array(1.0)])
    with pytest.raises(ValueError, match=r"\[vmap\] Primitive 'test_no_rules' has no vmap rule"):
        mx.vmap(f)(mx.array([1.0, 2.0]))
    del REGISTRY["test_no_rules"]


def test_function_that_evaluates_inside_stays_differentiable():
    def f(x):
        y = mx.exp(x)
        mx.eval(y)
        _ = repr(y)
        return y * 2

    assert mx.grad(f)(mx.array(0.0)).item() == pytest.approx(2.0)


def test_stop_gradient():
    f = lambda x: x * mx.stop_gradient(x)
    assert mx.grad(f)(mx.array(3.0)).item() == 3.0


def test_vjp_jvp_multiple_outputs():
    outs, grads = mx.vjp(lambda x, y: (x * y, x + y), [mx.array(2.0), mx.array(3.0)],
                         [mx.array(1.0), mx.array(1.0)])
    assert [o.item() for o in outs] == [6.0, 5.0] and [g.item() for g in grads] == [4.0, 3.0]
    outs, tans = mx.jvp(lambda x, y: (x * y, x + y), [mx.array(2.0), mx.array(3.0)],
                        [mx.array(1.0), mx.array(0.0)])
    assert [t.item() for t in tans] == [3.0, 1.0]


# --- vmap ------------------------------------------------------------------------------------
def test_vmap_elementwise_in_axes_out_axes():
    a = mx.array(_rand((3, 4)))
    b = mx.array(_rand((4,), seed=2))
    check_vmap(lambda x, y: x * y + mx.sin(x), [a, b], in_axes=[0, None])
    check_vmap(lambda x, y: x * y, [a, a], in_axes=[1, 1])
    out = mx.vmap(lambda x: x * 2, in_axes=1, out_axes=1)(a)
    np.testing.assert_allclose(np.asarray(out), np.asarray(a) * 2)
    out = mx.vmap(lambda x, y: x + y, in_axes=(0, None))(a, mx.array(1.0))
    assert out.shape == (3, 4)


def test_vmap_trees_and_unmapped_outputs():
    xs = {"a": mx.array(_rand((5, 2))), "b": mx.array(_rand((5,)))}
    out = mx.vmap(lambda t: {"s": t["a"] * 2, "c": mx.array(1.0)})(xs)
    assert out["s"].shape == (5, 2) and out["c"].shape == (5,)
    out = mx.vmap(lambda t: t["a"] + 1, in_axes=({"a": 0, "b": None},))(xs)
    assert out.shape == (5, 2)


def test_nested_vmap_and_vmap_of_grad_and_grad_of_vmap():
    x = mx.array(_rand((3, 4)))
    out = mx.vmap(mx.vmap(lambda v: v * v))(x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x) ** 2, rtol=1e-6)
    g = mx.vmap(mx.grad(mx.sin))(mx.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(g), np.cos([0.0, 1.0, 2.0]), rtol=1e-6)
    h = mx.grad(lambda v: mx.vmap(mx.sin)(v).sum())(mx.array([0.0, 1.0]))
    np.testing.assert_allclose(np.asarray(h), np.cos([0.0, 1.0]), rtol=1e-6)


def test_vmap_errors():
    with pytest.raises(ValueError, match=r"\[vmap\] Inconsistent sizes"):
        mx.vmap(lambda a, b: a + b)(mx.array([1.0, 2.0]), mx.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"\[vmap\] in_axes has 1 entries"):
        mx.vmap(lambda a, b: a + b, in_axes=(0,))(mx.array([1.0]), mx.array([1.0]))
    with pytest.raises(ValueError, match=r"\[vmap\] At least one input must be mapped"):
        mx.vmap(lambda a: a, in_axes=None)(mx.array([1.0]))
    with pytest.raises(ValueError, match=r"\[vmap\] .*evaluated"):
        mx.vmap(lambda a: a * a.item())(mx.array([1.0, 2.0]))


# --- custom_function and checkpoint ------------------------------------------------------------
def test_custom_function_vjp_jvp_vmap():
    @mx.custom_function
    def f(x, y):
        return mx.sin(x) * y

    @f.vjp
    def f_vjp(primals, cotangent, output):
        x, y = primals
        return cotangent * mx.cos(x) * y * 10, cotangent * mx.sin(x)

    x, y = mx.array(0.5), mx.array(2.0)
    assert f(x, y).item() == pytest.approx(math.sin(0.5) * 2)
    gx, gy = mx.grad(f, argnums=[0, 1])(x, y)
    assert gx.item() == pytest.approx(math.cos(0.5) * 2 * 10)
    assert gy.item() == pytest.approx(math.sin(0.5))
    # default jvp and vmap go through the function itself
    _, (t,) = mx.jvp(f, [x, y], [mx.array(1.0), mx.array(0.0)])
    assert t.item() == pytest.approx(math.cos(0.5) * 2)
    v = mx.vmap(f)(mx.array([0.5, 1.0]), mx.array([2.0, 2.0]))
    np.testing.assert_allclose(np.asarray(v), np.sin([0.5, 1.0]) * 2, rtol=1e-6)

    @f.jvp
    def f_jvp(primals, tangents):
        return tangents[0] * 100

    _, (t,) = mx.jvp(f, [x, y], [mx.array(1.0), mx.array(0.0)])
    assert t.item() == pytest.approx(100.0)


def test_checkpoint_gives_same_gradients():
    w = mx.array(_rand((8, 8), seed=4).astype(np.float32))

    def layer(x):
        return mx.tanh(x * 0.5 + 0.1) * 1.5

    def net(x, ckpt):
        f = mx.checkpoint(layer) if ckpt else layer
        for _ in range(5):
            x = f(x)
        return (x * x).sum()

    g1 = mx.grad(lambda x: net(x, False))(w)
    g2 = mx.grad(lambda x: net(x, True))(w)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-5, atol=1e-6)


def test_checkpoint_lowers_peak_memory():
    """50 layers of a wide MLP-like block: with checkpointing the backward pass keeps only
    the layer inputs, not every intermediate."""
    x0 = mx.array(np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32))

    def block(x):
        h = mx.tanh(x * 0.9)
        h = mx.sin(h) * 0.5 + h
        return mx.tanh(h) + x * 0.1

    def loss(x, ckpt):
        f = mx.checkpoint(block) if ckpt else block
        for _ in range(50):
            x = f(x)
        return x.sum()

    peaks = []
    for ckpt in (False, True):
        gc.collect()
        mx.clear_cache()
        mx.reset_peak_memory()
        base = mx.get_active_memory()
        g = mx.grad(lambda x: loss(x, ckpt))(x0)
        mx.eval(g)
        peaks.append(mx.get_peak_memory() - base)
        del g
    assert peaks[1] < peaks[0], peaks


# --- completeness ------------------------------------------------------------------------------
INTERNAL = {"transform_leaf", "vmap_placeholder"}


def test_every_primitive_has_all_rules():
    missing = [(name, rule) for name, p in REGISTRY.items() if name not in INTERNAL
               and not name.startswith("test_")
               for rule in ("vjp", "jvp", "vmap") if getattr(p, rule) is None]
    assert not missing, missing


def test_array_constructor_on_a_traced_array_stays_differentiable():
    g = mx.grad(lambda x: (mx.array(x) * x).sum())(mx.array([1.0, 2.0]))
    assert g.tolist() == [2.0, 4.0]
    g = mx.grad(lambda x: mx.array(x, dtype=mx.float32).sum())(mx.array([1.0], mx.float64))
    assert g.tolist() == [1.0]


def test_depends():
    a, b = mx.array([1.0]), mx.array([2.0])
    r = mx.depends(a, b)
    assert isinstance(r, mx.array) and r.tolist() == [1.0]
    r = mx.depends([a, b], [b])
    assert isinstance(r, list) and [x.tolist() for x in r] == [[1.0], [2.0]]
    # the dependency is evaluated with the result
    dep = mx.exp(mx.array([0.0]))
    out = mx.depends(a * 2, dep)
    mx.eval(out)
    assert dep._data is not None
    assert mx.grad(lambda x: mx.depends([x * 2], [x * 3])[0].sum())(mx.array(1.0)).item() == 2.0
    _, (t,) = mx.jvp(lambda x: mx.depends(x * 2, x), [mx.array(1.0)], [mx.array(1.0)])
    assert t.item() == 2.0
    assert mx.vmap(lambda x: mx.depends(x * 2, x))(mx.array([1.0, 2.0])).tolist() == [2.0, 4.0]
    with pytest.raises(TypeError, match=r"\[depends\]"):
        mx.depends(a, [1])


def test_vmap_goes_through_stop_gradient_and_what_follows():
    x = mx.array([[1.0, 2.0], [3.0, 4.0]])
    out = mx.vmap(lambda v: mx.stop_gradient(v) * 2 + 1)(x)
    assert out.tolist() == [[3.0, 5.0], [7.0, 9.0]]
    g = mx.grad(lambda v: (mx.stop_gradient(v) * v).sum())(mx.array([1.0, 2.0]))
    assert g.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("arg", [np.ones((2, 3)), [mx.ones(2), np.ones(2)], {"w": object()}])
def test_grad_of_non_array_leaves_raises(arg):
    # MLX refuses them; taking them as constants would return the input as its "gradient"
    with pytest.raises(ValueError, match=r"\[tree_flatten\] The argument should contain only arrays"):
        mx.grad(lambda a: mx.array(1.0))(arg)
