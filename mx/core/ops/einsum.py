"""einsum and einsum_path.

Subscripts are parsed as MLX does: spaces are ignored, letters (either case) name axes,
one '...' per operand stands for its leading unnamed axes (expanded with the last unused
letters of the alphabet), and without '->' the output is the ellipsis followed by the
letters that occur once, sorted. Axes of size 1 broadcast against the other operands'.

The contraction order is MLX's greedy path (the opt_einsum 'greedy' algorithm with MLX's
cost limits), which einsum_path reports and the kernel hands to np.einsum. The output
dtype follows the steps MLX takes along that path: a step that contracts an axis shared by
two operands is a matmul (inexact dtypes only), other steps multiply and sum (sums of bool
and small integers widen as in mx.sum).
"""
from __future__ import annotations

import string

import numpy as np

from mx.core._array import array, make_node, promote_types, shape_str
from mx.core.ops._util import as_array
from mx.core.primitives import declare

_HALF = ("float16", "bfloat16")
_F32 = np.dtype(np.float32)
_LETTERS = string.ascii_lowercase + string.ascii_uppercase
_SUM_DTYPE = {"bool": "int32", "int8": "int32", "int16": "int32", "uint8": "uint32",
              "uint16": "uint32"}


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------
def _split(subscripts):
    """(input subscripts, output subscript) with the implicit output filled in."""
    s = subscripts.replace(" ", "")
    if "->" in s:
        lhs, rhs = s.split("->", 1)
    else:
        lhs = s
        ell = "..." if "." in lhs else ""
        once = [c for c in set(lhs) if c not in ",." and lhs.count(c) == 1]
        rhs = ell + "".join(sorted(once))
    return lhs.split(","), rhs


def _scan(sub, op):
    """(has an ellipsis, number of letters) of one subscript, checking its characters."""
    letters = 0
    seen = False
    i = 0
    while i < len(sub):
        if sub[i] in _LETTERS:
            letters += 1
            i += 1
            continue
        if sub[i:i + 3] != "...":
            raise ValueError(f"[{op}] Subscripts must be letters, but got '{sub[i]}'.")
        if seen:
            raise ValueError(f"[{op}] Only one ellipsis per subscript is allowed but found more "
                             f"in '{sub}'.")
        seen = True
        i += 3
    return seen, letters


def _tail(unused, length):
    """The letters an ellipsis of `length` axes stands for: the last unused ones, so that
    shorter ellipses align with the trailing axes of longer ones (broadcasting)."""
    return unused[len(unused) - length:] if length else ""


def _parse(subscripts, shapes, op):
    """Validated (inputs, output, sizes): the subscripts with ellipses expanded and each
    letter's (broadcast) size."""
    if not isinstance(subscripts, str):
        raise TypeError(f"[{op}] subscripts must be a str, got {type(subscripts).__name__}.")
    if not shapes:
        raise ValueError(f"[{op}] At least one operand is required.")
    ins, out = _split(subscripts)
    if len(ins) != len(shapes):
        raise ValueError(f"[{op}] Number of operands, {len(shapes)}, does not match number of "
                         f"input subscripts, {len(ins)}")
    unused = "".join(c for c in _LETTERS if c not in subscripts)
    longest = 0
    expanded = []
    for i, (sub, shape) in enumerate(zip(ins, shapes)):
        has, letters = _scan(sub, op)
        if has:
            length = len(shape) - letters
            if length < 0:
                raise ValueError(f"[{op}] Operand {i} with shape {shape_str(shape)} has "
                                 f"insufficient dimensions for subscript '{sub}'. The ellipsis "
                                 f"requires at least {letters} dimensions but the operand has "
                                 f"{len(shape)} dimensions.")
            longest = max(longest, length)
            sub = sub.replace("...", _tail(unused, length))
        expanded.append(sub)
    if _scan(out, op)[0]:
        # the output's ellipsis has the longest length seen among the inputs
        out = out.replace("...", _tail(unused, longest))
    if len(set(out)) != len(out):
        raise ValueError(f"[{op}] Repeat indices not allowed in output.")
    sizes = {}
    for i, (sub, shape) in enumerate(zip(expanded, shapes)):
        if len(sub) != len(shape):
            raise ValueError(f"[{op}] Invalid number of subscripts {len(sub)} for input {i} "
                             f"with {len(shape)} dimensions.")
        local = {}
        for c, n in zip(sub, shape):
            if local.setdefault(c, n) != n:
                raise ValueError(f"[{op}] Dimensions of repeated subscripts do not have the "
                                 f"same size ({local[c]} != {n}).")
        for j, (c, n) in enumerate(zip(sub, shape)):
            have = sizes.setdefault(c, n)
            if n != 1 and have != 1 and have != n:
                raise ValueError(f"[{op}] Cannot broadcast dimension {j} of input {i} with "
                                 f"shape {shape_str(shape)} to size {have}.")
            sizes[c] = max(have, n)
    for c in out:
        if c not in sizes:
            raise ValueError(f"[{op}] Output subscript '{c}' does not appear in any input "
                             "subscript.")
    return expanded, out, sizes


# ---------------------------------------------------------------------------------------
# the contraction path (MLX's greedy search)
# ---------------------------------------------------------------------------------------
def _size(term, sizes):
    n = 1
    for c in term:
        n *= sizes[c]
    return n


def _flops(term, inner, nterms, sizes):
    return _size(term, sizes) * (max(1, nterms - 1) + (1 if inner else 0))


def _naive_cost(sets, out, sizes):
    union = set().union(*sets)
    inner = any(c not in out for c in union)
    return _flops(union, inner, len(sets), sizes), len(union)


def _greedy(sets, out, sizes, cost_limit, memory_limit):
    """The greedy pairwise order: at each step the pair whose contraction removes the most
    elements (ties: the cheaper, then the first found); outer products only when nothing
    else is left. Returns (path, cost, scaling)."""
    sets = list(sets)
    pairs = [(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))]
    path, cost, scaling = [], 0, 0
    cands = []  # [removed, flops, kept set, ndims, x, y], in the order found

    def consider(p1, p2):
        union = sets[p1] | sets[p2]
        others = set(out)
        for k, s in enumerate(sets):
            if k != p1 and k != p2:
                others |= s
        kept = union & others
        new_size = _size(kept, sizes)
        if new_size > memory_limit:
            return
        removed = _size(sets[p1], sizes) + _size(sets[p2], sizes) - new_size
        flops = _flops(union, len(union) > len(kept), 2, sizes)
        if cost + flops > cost_limit:
            return
        cands.append([removed, flops, kept, len(union), p1, p2])

    for _ in range(len(sets) - 1):
        for p1, p2 in pairs:
            if sets[p1] & sets[p2]:
                consider(p1, p2)
        if not cands:
            for p1, p2 in pairs:
                consider(p1, p2)
        if not cands:
            c, sc = _naive_cost(sets, out, sizes)
            path.append(tuple(range(len(sets))))
            cost += c
            scaling = max(scaling, sc)
            return path, cost, scaling
        best = cands[0]
        for c in cands[1:]:
            if c[0] > best[0] or (c[0] == best[0] and c[1] < best[1]):
                best = c
        removed, flops, kept, ndims, bx, by = best
        scaling = max(scaling, ndims)
        path.append((bx, by))
        del sets[by]
        del sets[bx]
        sets.append(kept)
        left = []
        for c in cands:
            if c[4] in (bx, by) or c[5] in (bx, by):
                continue
            c[4] -= (c[4] > bx) + (c[4] > by)
            c[5] -= (c[5] > bx) + (c[5] > by)
            left.append(c)
        cands = left
        pairs = [(i, len(sets) - 1) for i in range(len(sets) - 1)]
        cost += flops
    return path, cost, scaling


def _plan(ins, out, sizes):
    """(path, steps, naive cost, naive scaling, cost, scaling); steps are
    (positions, input subscripts, output letters) of each contraction."""
    sets = [set(s) for s in ins]
    naive, naive_scale = _naive_cost(sets, out, sizes)
    if len(ins) <= 2:
        path = [tuple(range(len(ins)))]
        cost, scale = naive, naive_scale
    else:
        max_size = max([_size(out, sizes)] + [_size(s, sizes) for s in ins])
        path, cost, scale = _greedy(sets, out, sizes, naive, max_size)
    # replay the path on the subscripts: each step's result keeps the letters still needed
    terms = list(ins)
    steps = []
    for k, pos in enumerate(path):
        used = [terms[p] for p in pos]
        rest = [t for i, t in enumerate(terms) if i not in pos]
        if k == len(path) - 1:
            result = out
        else:
            need = set(out).union(*map(set, rest)) if rest else set(out)
            result = "".join(sorted(set("".join(used)) & need))
        steps.append((pos, used, result))
        terms = rest + [result]
    return path, steps, naive, naive_scale, cost, scale


def _sum_dtype(d):
    from mx.core import dtypes
    name = _SUM_DTYPE.get(d.name)
    return d if name is None else getattr(dtypes, name)


def _result_dtype(steps, dtypes, op):
    """The output dtype MLX's evaluation of the path gives (see the module docstring)."""
    vals = list(dtypes)
    for pos, used, result in steps:
        ds = [vals[p] for p in pos]
        # letters used by one operand only (and not kept) are summed out first
        counts = {}
        for t in used:
            for c in set(t):
                counts[c] = counts.get(c, 0) + 1
        for c in set(result):
            counts[c] = counts.get(c, 0) + 1
        terms = []
        for t, d in zip(used, ds):
            kept = "".join(c for c in t if counts[c] > 1)
            terms.append(kept)
        ds = [_sum_dtype(d) if len(set(k)) < len(set(t)) else d
              for t, k, d in zip(used, terms, ds)]
        if len(terms) == 2 and any(c not in result for c in terms[0]):
            d = promote_types(ds[0], ds[1])
            if d.kind < 3:  # not floating or complex
                raise ValueError(f"[matmul] Only inexact types are supported but {ds[0].name} "
                                 f"and {ds[1].name} were provided which results in {d.name}, "
                                 "which is not a floating point type.")
        else:
            d = ds[0]
            for other in ds[1:]:
                d = promote_types(d, other)
            if any(c not in result for t in terms for c in t):
                d = _sum_dtype(d)
        vals = [v for i, v in enumerate(vals) if i not in pos] + [d]
    return vals[0]


# ---------------------------------------------------------------------------------------
# the primitive
# ---------------------------------------------------------------------------------------
def _einsum_kernel(*ops, subscripts, path, sizes, compute):
    ins = subscripts.split("->")[0].split(",")
    sizes = dict(sizes)
    arrs = []
    for x, sub in zip(ops, ins):
        x = x.astype(compute, copy=False)
        full = tuple(sizes[c] for c in sub)
        if x.shape != full:
            x = np.broadcast_to(x, full)
        arrs.append(x)
    out = np.einsum(subscripts, *arrs, optimize=["einsum_path", *path])
    return np.asarray(out)


EINSUM = declare("einsum", cpu=_einsum_kernel, doc="Einstein summation over the operands")


def _einsum_node(ins, out, sizes, operands, stream, op="einsum"):
    path, steps, *_ = _plan(ins, out, sizes)
    dtype = _result_dtype(steps, [x.dtype for x in operands], op)
    compute = _F32 if dtype.name in _HALF else dtype.np
    params = {"subscripts": ",".join(ins) + "->" + out, "path": tuple(path),
              "sizes": tuple(sorted(sizes.items())), "compute": compute}
    shape = tuple(sizes[c] for c in out)
    return make_node(EINSUM, tuple(operands), params, shape, dtype, stream)


# ---------------------------------------------------------------------------------------
# public ops
# ---------------------------------------------------------------------------------------
def einsum(subscripts, *operands, stream=None):
    """The Einstein summation of `operands` described by `subscripts`, e.g.
    ``einsum("ij,jk->ik", a, b)`` is a matrix product and ``einsum("ii", a)`` a trace.

    Letters name axes; letters repeated within one operand take its diagonal, letters
    missing from the output are summed over. Contractions between two operands run as
    matrix products and need a floating or complex result dtype."""
    xs = [as_array(x, "einsum") for x in operands]
    ins, out, sizes = _parse(subscripts, [x.shape for x in xs], "einsum")
    return _einsum_node(ins, out, sizes, xs, stream)


def einsum_path(subscripts, *operands):
    """The contraction order einsum uses: a list of tuples of operand positions (each step
    removes those operands and appends its result), and a text summary of the naive and
    optimized scaling and FLOP counts."""
    shapes = [x.shape if isinstance(x, array) else np.shape(x) for x in operands]
    ins, out, sizes = _parse(subscripts, [tuple(s) for s in shapes], "einsum_path")
    path, _, naive, naive_scale, cost, scale = _plan(ins, out, sizes)
    info = (f"  Complete contraction:  {subscripts}\n"
            f"         Naive scaling:  {naive_scale}\n"
            f"     Optimized scaling:  {scale}\n"
            f"      Naive FLOP count:  {naive}\n"
            f"  Optimized FLOP count:  {cost}\n")
    return [tuple(p) for p in path], info


__all__ = ["einsum", "einsum_path"]


# ---------------------------------------------------------------------------------------
# transformation rules (docs/transforms.md)
# ---------------------------------------------------------------------------------------
# einsum is linear in each operand: the tangent is a sum of einsums with one operand
# replaced by its tangent, and the cotangent of operand k is the einsum of the output
# cotangent with the other operands, written to operand k's subscript.
def _mx():
    import mx.core as mx
    return mx


def _is_inexact(d) -> bool:
    return d.name.startswith(("float", "bfloat", "complex"))


def _fresh(used, count):
    letters = [c for c in _LETTERS if c not in used]
    if len(letters) < count:
        raise ValueError("[einsum] Too many subscripts to transform this einsum (at most 52 "
                         "letters).")
    return letters[:count]


def _operand_grad(k, ct, operands, ins, out, sizes):
    """Cotangent of operand k."""
    mx = _mx()
    sub = ins[k]
    others = [(ins[i], operands[i]) for i in range(len(ins)) if i != k]
    present = set(out).union(*[set(s) for s, _ in others]) if others else set(out)
    subs = [out] + [s for s, _ in others]
    # integer operands join in the cotangent's dtype: the gradient's contraction order may
    # pair two of them, which the forward never did
    ops = [ct] + [x if _is_inexact(x.dtype) else x.astype(ct.dtype) for _, x in others]
    # letters summed away inside operand k come back by broadcasting against ones
    for c in dict.fromkeys(sub):
        if c not in present:
            subs.append(c)
            ops.append(mx.ones((sizes[c],), ct.dtype))
    # a letter repeated in operand k (a diagonal) is written to fresh letters tied to the
    # first occurrence by identity matrices
    repeats = len(sub) - len(set(sub))
    fresh = iter(_fresh(set("".join(ins)) | set(out), repeats))
    target, seen = [], set()
    for c in sub:
        if c in seen:
            f = next(fresh)
            subs.append(c + f)
            ops.append(mx.eye(sizes[c], dtype=ct.dtype))
            target.append(f)
        else:
            seen.add(c)
            target.append(c)
    target = "".join(target)
    tsizes = dict(sizes)
    tsizes.update({f: sizes[c] for f, c in zip(target, sub)})
    g = _einsum_node(subs, target, tsizes, ops, None)
    x = operands[k]
    # axes that operand k broadcast from size 1 are summed back
    axes = [i for i, n in enumerate(x.shape) if n == 1 and g.shape[i] != 1]
    if axes:
        g = mx.sum(g, axis=axes, keepdims=True)
    return g.astype(x.dtype) if g.dtype is not x.dtype else g


def _split_params(subscripts):
    lhs, out = subscripts.split("->")
    return lhs.split(","), out


def _einsum_vjp(primals, ct, output, subscripts, path, sizes, compute):
    ins, out = _split_params(subscripts)
    sizes = dict(sizes)
    return [_operand_grad(k, ct, primals, ins, out, sizes) if _is_inexact(x.dtype) else None
            for k, x in enumerate(primals)]


def _einsum_jvp(primals, tangents, output, subscripts, path, sizes, compute):
    mx = _mx()
    ins, out = _split_params(subscripts)
    sizes = dict(sizes)
    res = None
    for k, (x, t) in enumerate(zip(primals, tangents)):
        if t is None or not _is_inexact(x.dtype):
            continue
        ops = list(primals)
        ops[k] = t
        term = _einsum_node(ins, out, sizes, ops, None)
        res = term if res is None else res + term
    if res is None:
        return mx.zeros(output.shape, output.dtype)
    return res.astype(output.dtype) if res.dtype is not output.dtype else res


def _einsum_vmap(inputs, axes, output, subscripts, path, sizes, compute):
    from mx.core.transforms import move_batch_axis
    ins, out = _split_params(subscripts)
    sizes = dict(sizes)
    (b,) = _fresh(set(subscripts), 1)
    size = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
    sizes[b] = size
    new_ins, ops = [], []
    for x, a, sub in zip(inputs, axes, ins):
        if a is None:
            new_ins.append(sub)
            ops.append(x)
        else:
            new_ins.append(b + sub)
            ops.append(move_batch_axis(x, a, 0))
    return _einsum_node(new_ins, b + out, sizes, ops, None), 0


def install_rules():
    EINSUM.vjp = _einsum_vjp
    EINSUM.jvp = _einsum_jvp
    EINSUM.vmap = _einsum_vmap
