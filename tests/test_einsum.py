"""einsum against np.einsum, einsum_path against MLX's recorded paths, MLX's dtype rules and
error messages, and the rules checked by finite differences and against Python loops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from gradcheck import check_grads, check_vmap
from oracle import assert_same

RNG = np.random.default_rng(11)

# (subscripts, operand shapes); every one also runs through np.einsum
CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),                 # matrix product
    ("ij,jk", [(2, 3), (3, 4)]),                     # implicit output
    ("ji", [(2, 3)]),                                # implicit output sorts: a transpose
    ("ij->ji", [(2, 3)]),
    ("i j -> j i", [(2, 3)]),                        # spaces are ignored
    ("ii", [(3, 3)]),                                # trace
    ("ii->i", [(3, 3)]),                             # diagonal
    ("iij->j", [(3, 3, 2)]),
    ("ijij->ij", [(2, 3, 2, 3)]),
    ("i,j->ij", [(3,), (4,)]),                       # outer product
    ("i,i", [(5,), (5,)]),                           # inner product
    ("i,i->i", [(5,), (5,)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("", [()]),
    ("->", [()]),
    ("i,,->i", [(2,), (), ()]),                      # scalar operands
    ("bij,bjk->bik", [(4, 2, 3), (4, 3, 5)]),        # batched matmul
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),     # ellipsis broadcasting
    ("...,...->...", [(2, 3), (3,)]),
    ("...i,i...->...", [(2, 3), (3, 2)]),
    ("i...->...", [(2, 2, 3)]),
    ("...ii->...i", [(4, 3, 3)]),
    ("ij...,jk...->ik...", [(2, 3, 4), (3, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),      # chains through a path
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 6)]),
    ("abc,cd,de,ea->b", [(2, 3, 4), (4, 5), (5, 2), (2, 2)]),
    ("ijk,jkl,lmn,nm->i", [(3, 4, 5), (4, 5, 2), (2, 3, 3), (3, 3)]),
    ("ii,ij,jj->", [(3, 3), (3, 3), (3, 3)]),
    ("ab,cd,ef->abcdef", [(2, 2), (2, 2), (2, 2)]),
    ("a,b,c,d->abcd", [(2,), (3,), (1,), (2,)]),
    ("ab,ab,ab->", [(4, 5), (4, 5), (4, 5)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),                 # upper case letters
    ("iIj->j", [(2, 2, 3)]),
    ("ijk,ikl,ilm->ijm", [(2, 3, 4), (2, 4, 5), (2, 5, 6)]),
    ("ab,bc,ca->", [(3, 4), (4, 5), (5, 3)]),
    ("xyz,zw,wv,vu,ut->xt", [(2, 3, 4), (4, 3), (3, 5), (5, 2), (2, 6)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),                 # size-1 axes broadcast
    ("bij,bjk->bik", [(1, 2, 3), (5, 3, 4)]),
    ("i->", [(0,)]),
    ("ij,jk->ik", [(2, 0), (0, 4)]),
]


def ops_for(shapes, dtype=np.float32, rng=RNG):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("subs,shapes", CASES, ids=[c[0] or "empty" for c in CASES])
def test_einsum_matches_numpy(subs, shapes):
    ops = ops_for(shapes, np.float64)
    got = mx.einsum(subs, *[mx.array(o, dtype=mx.float64) for o in ops])
    assert_same(got, np.einsum(subs, *ops), rtol=1e-10, atol=1e-10)


def test_einsum_broadcasts_size_one_contractions():
    # MLX broadcasts a size-1 axis against the other operand's even when it is summed
    a, b = ops_for([(2, 1), (3, 4)], np.float64)
    got = mx.einsum("ij,jk->ik", mx.array(a, dtype=mx.float64), mx.array(b, dtype=mx.float64))
    assert_same(got, a @ np.broadcast_to(b.sum(0, keepdims=True), (1, 4)), rtol=1e-12)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "complex64"])
def test_einsum_float_dtypes(name):
    a, b = ops_for([(3, 4), (4, 2)])
    if name == "complex64":
        a = a + 1j * a[::-1]
    x = mx.array(a).astype(getattr(mx, name))
    y = mx.array(b).astype(getattr(mx, name))
    got = mx.einsum("ij,jk->ik", x, y)
    assert got.dtype.name == name
    tol = 3e-2 if "16" in name else 1e-5
    np.testing.assert_allclose(np.asarray(got.astype(mx.complex64)), np.asarray(x.astype(
        mx.complex64)) @ np.asarray(y.astype(mx.complex64)), rtol=tol, atol=tol)


@settings(max_examples=50, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_einsum_property_random_contractions(data, seed):
    letters = "abcde"
    sizes = {c: data.draw(st.integers(1, 3)) for c in letters}
    nops = data.draw(st.integers(1, 3))
    subs = [data.draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3, unique=True))
            for _ in range(nops)]
    used = sorted(set("".join("".join(s) for s in subs)))
    out = data.draw(st.lists(st.sampled_from(used), unique=True)) if used else []
    spec = ",".join("".join(s) for s in subs) + "->" + "".join(out)
    rng = np.random.default_rng(seed)
    ops = [rng.standard_normal([sizes[c] for c in s]) for s in subs]
    got = mx.einsum(spec, *[mx.array(o, dtype=mx.float64) for o in ops])
    assert_same(got, np.einsum(spec, *ops), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------
# einsum_path: MLX's greedy order and summary, recorded from MLX 0.32
# ---------------------------------------------------------------------------------------
PATHS = [
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], [(1, 2), (0, 1)], (4, 3, 360, 180)),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 6)], [(2, 3), (1, 2), (0, 1)],
     (5, 3, 2880, 456)),
    ("i,,->i", [(2,), (), ()], [(1, 2), (0, 1)], (1, 1, 4, 3)),
    ("ab,cd,ef->abcdef", [(2, 2), (2, 2), (2, 2)], [(0, 1), (0, 1)], (6, 6, 128, 80)),
    ("  ab, bc ->ac", [(2, 3), (3, 4)], [(0, 1)], (3, 3, 48, 48)),
    ("ij->i", [(2, 3)], [(0,)], (2, 2, 12, 12)),
    ("abc,cd,de,ea->b", [(2, 3, 4), (4, 5), (5, 2), (2, 2)], [(1, 2), (0, 2), (0, 1)],
     (5, 4, 960, 200)),
    ("ijk,jkl,lmn,nm->i", [(3, 4, 5), (4, 5, 2), (2, 3, 3), (3, 3)], [(0, 1), (0, 1), (0, 1)],
     (6, 4, 4320, 288)),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)], [(0, 1)], (4, 4, 240, 240)),
    ("ii,ij,jj->", [(3, 3), (3, 3), (3, 3)], [(0, 1), (0, 1)], (2, 2, 27, 24)),
    ("xyz,zw,wv,vu,ut->xt", [(2, 3, 4), (4, 3), (3, 5), (5, 2), (2, 6)],
     [(0, 1), (0, 1), (1, 2), (0, 1)], (7, 4, 21600, 276)),
    ("a,b,c,d->abcd", [(2,), (3,), (1,), (2,)], [(0, 2), (0, 1), (0, 1)], (4, 4, 36, 20)),
]


@pytest.mark.parametrize("subs,shapes,path,nums", PATHS, ids=[p[0] for p in PATHS])
def test_einsum_path_matches_mlx(subs, shapes, path, nums):
    got_path, info = mx.einsum_path(subs, *[mx.ones(s) for s in shapes])
    assert got_path == path
    assert info == (f"  Complete contraction:  {subs}\n"
                    f"         Naive scaling:  {nums[0]}\n"
                    f"     Optimized scaling:  {nums[1]}\n"
                    f"      Naive FLOP count:  {nums[2]}\n"
                    f"  Optimized FLOP count:  {nums[3]}\n")


def test_einsum_path_errors():
    with pytest.raises(ValueError, match=r"\[einsum_path\] At least one operand is required."):
        mx.einsum_path("ab,bc->ac")
    with pytest.raises(ValueError, match=r"\[einsum_path\] Number of operands, 1, does not "
                                         "match number of input subscripts, 2"):
        mx.einsum_path("ab,bc->ac", mx.ones((2, 2)))


# ---------------------------------------------------------------------------------------
# dtypes (recorded from MLX: matmul steps need inexact types, sums widen small integers)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("subs,d1,d2,out", [
    ("ij->", "bool", None, "int32"),
    ("ij->", "int8", None, "int32"),
    ("ij->", "uint16", None, "uint32"),
    ("ij->ji", "int8", None, "int8"),
    ("ij,ij->ij", "int8", "int8", "int8"),
    ("ij,ij->ij", "bool", "bool", "bool"),
    ("ij,j->ij", "bool", "int8", "int8"),
    ("ij,k->ik", "int8", "int8", "int32"),
    ("ij,jk->ik", "bool", "float16", "float16"),
    ("ij,jk->ik", "bfloat16", "float16", "float32"),
    ("ij,jk->ik", "int32", "float32", "float32"),
    ("ij->j", "float16", None, "float16"),
])
def test_einsum_dtypes(subs, d1, d2, out):
    shapes = {"ij": (2, 3), "jk": (3, 2), "j": (3,), "k": (2,)}
    ins = subs.split("->")[0].split(",")
    names = [d1, d2][:len(ins)]
    ops = [mx.ones(shapes[s]).astype(mx.bool_ if n == "bool" else getattr(mx, n))
           for s, n in zip(ins, names)]
    got = mx.einsum(subs, *ops)
    assert got.dtype.name == out
    want = np.einsum(subs, *[np.ones(shapes[s]) for s in ins])
    np.testing.assert_allclose(np.asarray(got.astype(mx.float32)), want)


@pytest.mark.parametrize("subs,d", [("ij,jk->ik", "int32"), ("i,i", "int32"),
                                    ("ij,ij->i", "bool"), ("ij,jk,kl->il", "int8")])
def test_einsum_integer_contractions_are_refused(subs, d):
    shapes = {"ij": (2, 2), "jk": (2, 2), "kl": (2, 2), "i": (2,)}
    ins = subs.split("->")[0].split(",")
    dt = mx.bool_ if d == "bool" else getattr(mx, d)
    with pytest.raises(ValueError, match=rf"\[matmul\] Only inexact types are supported but "
                                         rf"{d} and {d} were provided which results in {d}, "
                                         "which is not a floating point type."):
        mx.einsum(subs, *[mx.ones(shapes[s]).astype(dt) for s in ins])


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("subs,shapes,msg", [
    ("ij,jk->ik", [], r"\[einsum\] At least one operand is required."),
    ("ij,jk->ik", [(2, 3)], r"\[einsum\] Number of operands, 1, does not match number of "
                            "input subscripts, 2"),
    ("ij,jk->ik", [(2, 3), (4, 4)], r"\[einsum\] Cannot broadcast dimension 0 of input 1 with "
                                    r"shape \(4,4\) to size 3."),
    ("ijk->ik", [(2, 3)], r"\[einsum\] Invalid number of subscripts 3 for input 0 with 2 "
                          "dimensions."),
    ("ij->ii", [(2, 3)], r"\[einsum\] Repeat indices not allowed in output."),
    ("iij->j", [(2, 3, 3)], r"\[einsum\] Dimensions of repeated subscripts do not have the "
                            r"same size \(2 != 3\)."),
    ("i1->i", [(2, 2)], r"\[einsum\] Subscripts must be letters, but got '1'."),
    ("ij->j->i", [(2, 2)], r"\[einsum\] Subscripts must be letters, but got '-'."),
    ("..i->i", [(2, 2)], r"\[einsum\] Subscripts must be letters, but got '.'."),
    ("i......", [(2, 3)], r"\[einsum\] Only one ellipsis per subscript is allowed but found "
                          r"more in 'i......'."),
    ("ij...", [(2,)], r"\[einsum\] Operand 0 with shape \(2\) has insufficient dimensions for "
                      r"subscript 'ij...'. The ellipsis requires at least 2 dimensions but the "
                      "operand has 1 dimensions."),
    ("ij->ik", [(2, 3)], r"\[einsum\] Output subscript 'k' does not appear in any input"),
])
def test_einsum_errors(subs, shapes, msg):
    with pytest.raises(ValueError, match=msg):
        mx.einsum(subs, *[mx.ones(s) for s in shapes])


def test_einsum_subscripts_type_error():
    with pytest.raises(TypeError, match=r"\[einsum\] subscripts must be a str"):
        mx.einsum(["ij"], mx.ones((2, 2)))


def test_einsum_is_lazy_and_takes_stream():
    y = mx.einsum("ij,jk->ik", mx.ones((2, 3)), mx.ones((3, 2)), stream=mx.cpu)
    assert y._prim is not None
    assert y.tolist() == [[3.0, 3.0], [3.0, 3.0]]


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
RULE_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
    ("i,j->ij", [(3,), (4,)]), ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("bij,bjk->bik", [(1, 2, 3), (5, 3, 4)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]), ("iij->j", [(3, 3, 2)]), ("ij->", [(2, 3)]),
    ("ij,kl->", [(2, 3), (2, 2)]), ("i,,->i", [(2,), (), ()]), ("ijij->ij", [(2, 3, 2, 3)]),
    ("ii,ij,jj->", [(3, 3), (3, 3), (3, 3)]), ("ij->j", [(1, 3)]), ("ii->", [(1, 1)]),
    ("ab,b->ab", [(2, 3), (1,)]),
]


@pytest.mark.parametrize("subs,shapes", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_einsum_rules_finite_differences(subs, shapes):
    check_grads(lambda *o: mx.einsum(subs, *o), ops_for(shapes, np.float64))


@pytest.mark.parametrize("subs,shapes", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_einsum_vmap(subs, shapes):
    batched = [mx.array(o) for o in ops_for([(2,) + s for s in shapes])]
    check_vmap(lambda *o: mx.einsum(subs, *o), batched, rtol=1e-5, atol=1e-5)
    if len(shapes) > 1:
        rest = [mx.array(o) for o in ops_for(shapes[1:])]
        check_vmap(lambda *o: mx.einsum(subs, *o), [batched[0]] + rest,
                   in_axes=[0] + [None] * len(rest), rtol=1e-5, atol=1e-5)


def test_einsum_vmap_other_axis():
    a = mx.array(ops_for([(3, 2, 4)])[0])
    b = mx.array(ops_for([(4, 2)])[0])
    check_vmap(lambda x, y: mx.einsum("ij,j->i", x, y), [a, b], in_axes=[1, 1],
               rtol=1e-5, atol=1e-5)


def test_einsum_gradient_with_integer_operands():
    ones_i = mx.ones((3, 4), dtype=mx.int32)
    check_grads(lambda a: mx.einsum("ij,jk->ik", a, ones_i), ops_for([(2, 3)], np.float64))
    check_grads(lambda a: mx.einsum("ij,jk,kl->il", a, mx.ones((3, 4)),
                                    mx.ones((4, 5), dtype=mx.int32)),
                ops_for([(2, 3)], np.float64))
    _, (ga, gb) = mx.vjp(lambda a, b: mx.einsum("ij,jk->ik", a, b),
                         [mx.ones((2, 3)), ones_i], [mx.ones((2, 4))])
    assert ga.dtype == mx.float32 and not np.asarray(gb).any()


def test_einsum_grad_of_grad():
    f = lambda a, b: mx.grad(lambda a, b: (mx.einsum("ij,jk->ik", a, b) ** 2).sum())(a, b)
    check_grads(f, ops_for([(2, 3), (3, 4)], np.float64))
    g = lambda a: mx.grad(lambda a: (mx.einsum("ii->i", a) ** 3).sum())(a)
    check_grads(g, ops_for([(3, 3)], np.float64))


def test_einsum_vjp_matches_matmul_rule():
    a, b = ops_for([(2, 3), (3, 4)], np.float64)
    ct = RNG.standard_normal((2, 4))
    _, (ga, gb) = mx.vjp(lambda a, b: mx.einsum("ij,jk->ik", a, b),
                         [mx.array(a, dtype=mx.float64), mx.array(b, dtype=mx.float64)],
                         [mx.array(ct, dtype=mx.float64)])
    np.testing.assert_allclose(np.asarray(ga), ct @ b.T, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gb), a.T @ ct, rtol=1e-12)
