# cython: language_level=3
"""Graph scheduling: order an array graph without recursion, run each node once, free
intermediates as soon as their last consumer ran, and donate dying input buffers.
"""
cimport cython
from mx.core._array cimport array, Primitive, Dtype, resolve_input

import threading
import numpy as _np

cdef extern from "Python.h":
    Py_ssize_t Py_REFCNT(object o)

from mx.core import _memory

cdef object ndarray = _np.ndarray
cdef object set_alloc_handler = _memory.set_handler
cdef object MX_HANDLER = _memory.handler()


def _quiet_errstate():
    """(contextvar, value) that silence NumPy's floating-point warnings (MLX gives nan/inf
    silently); entered per eval through the context variable NumPy itself uses, which is
    ten times cheaper than np.errstate."""
    try:
        from numpy._core import _ufunc_config as cfg
        var = cfg._extobj_contextvar
        with _np.errstate(all="ignore"):
            value = var.get()
        return var, value
    except Exception:
        return None, None


cdef object ERR_VAR, ERR_QUIET
ERR_VAR, ERR_QUIET = _quiet_errstate()


cdef class _Quiet:
    """Context for running kernels: mx's counting allocator and no float warnings."""
    cdef object prev_handler, token, es

    def __enter__(self):
        self.prev_handler = set_alloc_handler(MX_HANDLER)
        if ERR_VAR is not None:
            self.token = ERR_VAR.set(ERR_QUIET)
        else:
            self.es = _np.errstate(all="ignore")
            self.es.__enter__()
        return self

    def __exit__(self, *exc):
        if ERR_VAR is not None:
            ERR_VAR.reset(self.token)
        else:
            self.es.__exit__(None, None, None)
        set_alloc_handler(self.prev_handler)
        return False


def kernel_context():
    """The context the scheduler runs kernels in (also used by array conversion)."""
    return _Quiet()
cdef object np_asarray = _np.asarray
cdef unsigned long EPOCH = 1
# > 0 while a transform traces a function: evaluated nodes keep their graph (the transform
# walks it afterwards) and no buffer is donated (a traced value may be needed again).
cdef int KEEP_GRAPH = 0


def keep_graph(int delta):
    """Enter (+1) or leave (-1) a region where eval keeps graphs; returns the new depth."""
    global KEEP_GRAPH
    KEEP_GRAPH += delta
    return KEEP_GRAPH
cdef object LOCK = threading.RLock()

# Hooks for the GPU backend (set by mx/backend when a GPU shim loads): once set, dispatch
# sees every node (it picks the device from node._stream, or the default device when that
# is None) and returns the output or None for the CPU kernel; finish runs after each
# evaluation (it waits for queued GPU work, so evaluated arrays are readable).
cdef object _DISPATCH = None     # dispatch(node, prim, args) -> ndarray or None
cdef object _FINISH = None       # finish() -> None

# How many references a dying input holds while the run loop looks at it: the consumer's
# input tuple and the loop's own variable. Its NumPy buffer: the array, the args list and
# can_donate's local.
DEF NODE_REFS = 2
DEF DATA_REFS = 3


def set_dispatch(fn, finish=None):
    """Install (or with None, remove) the backend's dispatch hook and its finish hook."""
    global _DISPATCH, _FINISH
    _DISPATCH = fn
    _FINISH = finish if fn is not None else None


def _depth_of(array a):
    return a._depth


cdef list topo_order(list roots):
    """Unevaluated nodes reachable from roots, inputs before consumers (iterative DFS)."""
    global EPOCH
    EPOCH += 2
    cdef unsigned long opened = EPOCH, done = EPOCH + 1
    cdef list order = []
    cdef list stack = []
    cdef array n, inp
    cdef Py_ssize_t i
    cdef list pending
    for r in roots:
        n = <array>r
        if n._data is None and n._mark != done:
            stack.append(n)
        while stack:
            n = <array>stack[len(stack) - 1]
            if n._mark == done or n._data is not None:
                stack.pop()
                continue
            if n._mark == opened:
                stack.pop()
                n._mark = done
                order.append(n)
                continue
            n._mark = opened
            # inputs go on the stack shallowest first, so the deepest runs first: a long
            # chain (a backward pass) is computed before short side branches, whose values
            # then live only until their consumer runs (what makes checkpointing pay)
            pending = []
            for i in range(len(n._inputs)):
                inp = resolve_input(n, i, <array>n._inputs[i])
                if inp._data is None and inp._mark != done:
                    if inp._mark == opened:
                        raise RuntimeError("[eval] The graph has a cycle.")
                    pending.append(inp)
            if len(pending) == 1:
                stack.append(pending[0])
            elif len(pending) == 2:
                if (<array>pending[0])._depth > (<array>pending[1])._depth:
                    stack.append(pending[1])
                    stack.append(pending[0])
                else:
                    stack.append(pending[0])
                    stack.append(pending[1])
            elif pending:
                pending.sort(key=_depth_of)
                stack.extend(pending)
    return order


cdef inline bint can_donate(array inp, array node):
    d = inp._data
    if Py_REFCNT(inp) > NODE_REFS or Py_REFCNT(d) > DATA_REFS or inp._weak:
        return False
    if inp._dtype is not node._dtype or inp._shape != node._shape:
        return False
    if node._dtype.kind == 0:
        # NumPy computes some bool ops (floor_divide, power) in int8: no bool out= buffers
        return False
    flags = d.flags
    return d.base is None and flags.c_contiguous and flags.writeable


cdef inline bint _any_history(tuple inputs):
    for x in inputs:
        if (<array>x)._history is not None:
            return True
    return False


cdef object run_node(array node):
    cdef Primitive prim = <Primitive>node._prim
    cdef tuple inputs = node._inputs
    cdef Py_ssize_t i
    if node._in_versions is not None or _any_history(inputs):
        inputs = tuple([resolve_input(node, i, <array>inputs[i]) for i in range(len(inputs))])
    cdef list args = [(<array>x)._data for x in inputs]
    cdef object params = node._params
    cdef object out = None
    cdef object kernel
    if _DISPATCH is not None:
        out = _DISPATCH(node, prim, args)
        if out is not None:
            return out
    kernel = prim.cpu
    if kernel is None:
        raise NotImplementedError(f"[{prim.name}] has no CPU kernel.")
    if prim.donates and KEEP_GRAPH == 0:
        for x in inputs:
            if can_donate(<array>x, node):
                donor = (<array>x)._data
                if params is None:
                    return kernel(*args, out=donor)
                return kernel(*args, out=donor, **params)
    if params is None:
        return kernel(*args)
    return kernel(*args, **params)


cdef inline object fix_output(object out, array node):
    """Kernels return NumPy scalars for 0-d results and may widen dtypes: normalise."""
    if type(out) is not ndarray:
        out = np_asarray(out)
    npd = node._dtype.np
    if out.dtype != npd:
        out = out.astype(npd)
    if out.shape != node._shape:
        raise RuntimeError(f"[{node._prim.name}] kernel returned shape {out.shape} for an "
                           f"output of shape {node._shape}; this is a bug in mx.")
    return out


cdef void detach(array node):
    node._prim = None
    node._inputs = None
    node._params = None
    node._siblings = None
    node._in_versions = None


def eval_arrays(list roots):
    """Evaluate every array in `roots` (and what they depend on), then drop their graphs."""
    cdef array n
    for r in roots:
        n = <array>r
        if n._pending is not None:
            f = n._pending
            f.result()
    with LOCK, _Quiet():
        _run(roots)


cdef _run(list roots):
    if _FINISH is None:
        _run_nodes(roots)
        return
    try:
        _run_nodes(roots)
    finally:
        _FINISH()


cdef _run_nodes(list roots):
    cdef list order = topo_order(roots)
    cdef Py_ssize_t i, k, count = len(order)
    cdef array node, sib
    cdef object out
    for i in range(count):
        node = <array>order[i]
        order[i] = None
        if node._data is not None:
            continue
        out = run_node(node)
        if node._siblings is None:
            node._data = fix_output(out, node)
            if KEEP_GRAPH == 0:
                detach(node)
        else:
            sibs = node._siblings
            for k in range(len(sibs)):
                sib = <array>sibs[k]
                sib._data = fix_output(out[k], sib)
            if KEEP_GRAPH == 0:
                for k in range(len(sibs)):
                    detach(<array>sibs[k])
        # drop the loop's own references, or the next node (often this one's consumer)
        # would see one reference too many and never take over the buffer
        node = None
        out = None
        sib = None
        sibs = None


class _Pending:
    """The future of one async_eval; reading an array waits on it."""

    def __init__(self):
        self._event = threading.Event()
        self._error = None

    def result(self):
        self._event.wait()
        if self._error is not None:
            raise self._error


cdef object _WORKER = None
cdef object _QUEUE = None


def _worker_loop(q):
    from mx.core import devices
    while True:
        roots, fut, device, streams = q.get()
        try:
            # nodes built without a stream run on the default device of the thread that
            # called async_eval, not on this thread's own default (the CPU)
            devices._state.device = device
            devices._state.streams = streams
            with LOCK, _Quiet():
                _run(roots)
        except BaseException as e:  # handed to whoever reads the arrays
            fut._error = e
        finally:
            for r in roots:
                if (<array>r)._pending is fut:
                    (<array>r)._pending = None
            fut._event.set()


def async_eval_arrays(list roots):
    """Start evaluating `roots` on the worker thread and return at once."""
    global _WORKER, _QUEUE
    import queue
    if _WORKER is None or not _WORKER.is_alive():
        _QUEUE = queue.SimpleQueue()
        _WORKER = threading.Thread(target=_worker_loop, args=(_QUEUE,), daemon=True,
                                   name="mx-async-eval")
        _WORKER.start()
    fut = _Pending()
    todo = []
    for r in roots:
        if (<array>r)._data is None:
            (<array>r)._pending = fut
            todo.append(r)
    if not todo:
        return
    from mx.core import devices
    _QUEUE.put((todo, fut, devices._state.device, dict(devices._state.streams)))


def synchronize_all():
    """Wait until every async_eval issued so far has finished."""
    global _QUEUE
    if _WORKER is None or not _WORKER.is_alive():
        return
    fut = _Pending()
    from mx.core import devices
    _QUEUE.put(([], fut, devices._state.device, dict(devices._state.streams)))
    fut.result()
