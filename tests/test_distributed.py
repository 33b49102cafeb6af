"""mx.distributed: the single-process API in this process, and 2-process jobs under mpirun
(the worker scripts in tests/distributed/ pickle what they computed; NumPy says what it
should be). The MPI tests skip when mpirun or mpi4py is missing."""
import functools
import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
import time

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
import mx.launch as launch
from mx.core import distributed as dist
from mx.core.distributed import _backend, _mpi

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "distributed")
MPIRUN = shutil.which("mpirun")


def _mpi_missing():
    if MPIRUN is None:
        return "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install mpi4py)"
    if not _mpi.available():
        return "no MPI library could be loaded"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


@pytest.fixture
def fresh(monkeypatch):
    """No launcher variables and no group made yet; init's caches restored afterwards."""
    for var in _backend.LAUNCH_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dist, "_WORLD", {})
    monkeypatch.setattr(dist, "_BACKENDS", dict(dist._BACKENDS))
    # (only MPI for "any": these tests are about MPI and the launcher, also on a GPU machine
    # where NCCL would be tried first; tests/test_distributed_nccl.py covers NCCL)
    monkeypatch.setattr(dist, "_ANY_ORDER", ["mpi"])
    return monkeypatch


class OneProcess(_backend.Backend):
    """A backend standing for a job whose group came up with a single process."""
    name = "mpi"
    rank, size = 0, 1

    def split(self, color, key):
        return self

    def all_reduce(self, x, op):
        return x

    def all_gather(self, x):
        return x

    def sum_scatter(self, x):
        return x

    def send(self, x, dst):
        raise ValueError("unused")

    def recv(self, shape, dtype, src):
        raise ValueError("unused")


# ---------------------------------------------------------------------------------------
# one process
# ---------------------------------------------------------------------------------------
def test_init_without_a_launcher_is_a_group_of_one(fresh):
    g = dist.init()
    assert (g.rank(), g.size()) == (0, 1)
    assert dist.init() is g
    assert repr(g) == "Group(rank=0, size=1, backend='singleton')"
    assert isinstance(g, dist.Group)


def test_collectives_of_a_group_of_one_return_their_input(fresh):
    x = mx.arange(6).reshape(2, 3)
    for f in (dist.all_sum, dist.all_max, dist.all_min, dist.all_gather, dist.sum_scatter):
        assert f(x) is x
        assert f(x, group=dist.init()) is x
    s = dist.all_sum(2.5)
    assert s.dtype == mx.float32 and s.item() == 2.5


def test_group_of_one_cannot_send_receive_or_split(fresh):
    x = mx.ones((2,))
    with pytest.raises(ValueError, match=r"\[send\] Cannot send to a singleton group"):
        dist.send(x, 0)
    with pytest.raises(ValueError, match=r"\[recv\] Cannot recv from a singleton group"):
        dist.recv((2,), mx.float32, 0)
    with pytest.raises(ValueError, match=r"\[recv_like\] Cannot recv from a singleton group"):
        dist.recv_like(x, 0)
    with pytest.raises(RuntimeError, match="Cannot split the distributed group further"):
        dist.init().split(0)


def test_argument_errors(fresh):
    with pytest.raises(ValueError, match="The only valid values for backend are 'any', 'mpi', "
                                         "'nccl', 'jaccl' and 'ring' but 'foo' was provided"):
        dist.init(backend="foo")
    with pytest.raises(ValueError, match="but 'foo' was provided"):
        dist.is_available("foo")
    with pytest.raises(TypeError, match="Group: no constructor defined"):
        dist.Group()
    with pytest.raises(ValueError, match=r"\[all_sum\] Invalid type list received"):
        dist.all_sum([1, 2])
    with pytest.raises(TypeError, match=r"\[all_gather\] group must be an mx.distributed.Group "
                                        "or None, got int"):
        dist.all_gather(mx.ones(2), group=3)
    with pytest.raises(TypeError, match=r"\[recv\] dtype must be an mx Dtype"):
        dist.recv((2,), "float32", 0)
    with pytest.raises(ValueError, match=r"\[recv\] Negative dimensions"):
        dist.recv((-1,), mx.float32, 0)
    with pytest.raises(TypeError, match=r"\[split\] color must be an integer, got str"):
        dist.init().split("a")


def test_is_available(fresh):
    from mx.core.distributed import _nccl
    assert dist.is_available("mpi") == _mpi.available()
    assert dist.is_available() == _mpi.available()
    assert dist.is_available("nccl") == _nccl.available()
    for name in ("ring", "jaccl"):
        assert dist.is_available(name) is False


@pytest.mark.parametrize("backend", ["ring", "jaccl"])
def test_strict_init_of_a_backend_mx_lacks_raises(fresh, backend):
    with pytest.raises(RuntimeError, match=f"Couldn't initialize any backend: {backend}: not "
                                           "implemented in mx"):
        dist.init(strict=True, backend=backend)
    assert dist.init(backend=backend).size() == 1      # non-strict: a group of one


@pytest.mark.parametrize("var", _backend.LAUNCH_SIZE_VARS)
def test_launcher_says_two_but_no_backend_warns_or_raises(fresh, var):
    fresh.setenv(var, "2")
    fresh.setitem(dist._BACKENDS, "mpi", (lambda: False, lambda: "mpi4py is not installed",
                                          _mpi.init))
    with pytest.raises(RuntimeError, match="Couldn't initialize any backend: mpi: mpi4py is "
                                           "not installed"):
        dist.init(strict=True)
    with pytest.warns(RuntimeWarning, match=rf"The launcher started 2 processes \({var}=2\) but "
                                            r"this process is in a group of size 1: mpi: mpi4py "
                                            "is not installed"):
        g = dist.init()
    assert g.size() == 1


def test_launcher_says_two_but_backend_fails_to_start(fresh):
    fresh.setenv("OMPI_COMM_WORLD_SIZE", "2")

    def start():
        raise OSError("no route to the launcher")

    fresh.setitem(dist._BACKENDS, "mpi", (lambda: True, lambda: "", start))
    with pytest.raises(RuntimeError, match="Could not initialize the mpi backend: no route"):
        dist.init(strict=True)
    with pytest.warns(RuntimeWarning, match="mpi: initialization failed: no route to the launcher"):
        assert dist.init().size() == 1


def test_launcher_says_two_but_backend_comes_up_alone(fresh):
    fresh.setenv("PMI_SIZE", "2")
    fresh.setitem(dist._BACKENDS, "mpi", (lambda: True, lambda: "", OneProcess))
    with pytest.warns(RuntimeWarning, match=r"started 2 processes \(PMI_SIZE=2\).*the mpi "
                                            "backend came up with a group of size 1"):
        g = dist.init()
    assert g.size() == 1
    # the group is kept, and a later strict call still refuses it
    with pytest.raises(RuntimeError, match="came up with a group of size 1"):
        dist.init(strict=True)


def test_strict_init_with_a_launcher_of_one_process_is_fine(fresh):
    fresh.setenv("MX_WORLD_SIZE", "1")
    fresh.setitem(dist._BACKENDS, "mpi", (lambda: True, lambda: "", OneProcess))
    assert dist.init(strict=True).size() == 1


def test_register_backend(fresh):
    dist.register_backend("nccl", lambda: True, OneProcess, first=True)
    assert dist._ANY_ORDER[0] == "nccl"
    assert dist.is_available("nccl")
    g = dist.init(strict=True, backend="nccl")
    assert dist.init(backend="nccl") is g and g.size() == 1
    with pytest.raises(ValueError, match="Cannot register a backend named 'gloo'"):
        dist.register_backend("gloo", lambda: True, OneProcess)


@pytest.mark.parametrize("value, seconds", [(None, 300.0), ("2.5", 2.5), ("0", None),
                                            ("-1", None), ("inf", None), ("none", None)])
def test_timeout_setting(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("MX_DISTRIBUTED_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("MX_DISTRIBUTED_TIMEOUT", value)
    assert _backend.timeout_seconds() == seconds


def test_timeout_setting_rejects_garbage(monkeypatch):
    monkeypatch.setenv("MX_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="MX_DISTRIBUTED_TIMEOUT='soon' is not a number"):
        _backend.timeout_seconds()


def test_every_distributed_primitive_has_its_rules():
    for p in (dist.ALL_SUM, dist.ALL_MAX, dist.ALL_MIN, dist.ALL_GATHER, dist.SUM_SCATTER,
              dist.SEND, dist.RECV):
        assert p.vjp is not None and p.jvp is not None and p.vmap is not None, p.name


def test_average_gradients_is_identity_in_one_process(fresh):
    import mx.nn as nn
    grads = {"w": mx.ones((2, 2)), "b": [mx.zeros(3)]}
    assert nn.average_gradients(grads, communication_type=mx.float16) is grads


# ---------------------------------------------------------------------------------------
# the launcher's command line (no MPI needed)
# ---------------------------------------------------------------------------------------
def _cmd(argv, flavor, environ=None):
    args = launch.parse_args(argv)
    return launch.build_command(args, "/usr/bin/mpirun", flavor, environ or {"PATH": "/bin"})


def test_launch_command_on_one_machine(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("")
    cmd = _cmd(["-n", "3", str(script), "--lr", "0.1"], "openmpi")
    assert cmd[:3] == ["/usr/bin/mpirun", "-n", "3"]
    assert "--oversubscribe" in cmd
    assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)
    assert cmd[cmd.index("MX_WORLD_SIZE") - 1] == "-x"
    assert cmd[-4:] == [sys.executable, str(script), "--lr", "0.1"]
    cmd = _cmd(["-n", "2", "-m", "pkg.train", "--epochs", "1"], "mpich",
               {"PATH": "/bin", "MX_DISTRIBUTED_TIMEOUT": "9"})
    assert cmd[-5:] == [sys.executable, "-m", "pkg.train", "--epochs", "1"]
    assert cmd[cmd.index("-genvlist") + 1] == "MX_DISTRIBUTED_TIMEOUT,MX_WORLD_SIZE,PATH"
    assert "--oversubscribe" not in cmd


@pytest.mark.parametrize("flavor, line, flag", [("openmpi", "h1 slots=2", "--hostfile"),
                                                ("mpich", "h1:2", "-f")])
def test_launch_converts_mlx_json_hostfiles(tmp_path, flavor, line, flag):
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([{"ssh": "h1"}, {"ssh": "h2"}, {"ssh": "h1"}]))
    cmd = _cmd(["--hostfile", str(hosts), "--dry-run", "x.py"], flavor)
    converted = cmd[cmd.index(flag) + 1]
    try:
        with open(converted) as f:
            assert f.read().split("\n")[0] == line
    finally:
        os.unlink(converted)
    assert "--oversubscribe" not in cmd and "-n" not in cmd
    plain = tmp_path / "hosts"
    plain.write_text("h1 slots=4\n")
    cmd = _cmd(["--hostfile", str(plain), "-n", "4", "--dry-run", "x.py"], flavor)
    assert cmd[cmd.index(flag) + 1] == str(plain)


@pytest.mark.parametrize("argv, message", [
    (["-n", "2"], "no program"),
    (["-n", "0", "x.py"], "-n must be at least 1, got 0"),
    (["x.py"], "give the number of processes"),
    (["-n", "2", "/no/such/script.py"], "no such script"),
    (["--hostfile", "/no/such/hosts", "--dry-run", "x.py"], "no such hostfile"),
])
def test_launch_argument_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        launch.parse_args(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_launch_without_mpirun_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "find_mpirun", lambda explicit=None: None)
    script = tmp_path / "s.py"
    script.write_text("")
    assert launch.main(["-n", "2", str(script)]) == 2
    assert "no MPI launcher (mpirun/mpiexec) on PATH" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# two processes under mpirun
# ---------------------------------------------------------------------------------------
def _mpirun(n):
    cmd = [MPIRUN, "-n", str(n)]
    if launch.mpi_flavor(MPIRUN) == "openmpi":
        cmd += ["--oversubscribe", "--allow-run-as-root"]
    return cmd


def _env(**extra):
    env = dict(os.environ)
    for var in _backend.LAUNCH_SIZE_VARS:
        env.pop(var, None)
    env["MX_DISTRIBUTED_TIMEOUT"] = "60"
    env.update(extra)
    return env


def _run(cmd, timeout=110, **env):
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env),
                          cwd=HERE)
    return proc, time.monotonic() - start


def _job(tmp_path_factory, script, n=2):
    outdir = tmp_path_factory.mktemp(script)
    proc, _ = _run(_mpirun(n) + [sys.executable, os.path.join(WORKERS, script + ".py"), str(outdir)])
    if proc.returncode != 0:
        pytest.fail(f"{script} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    ranks = []
    for r in range(n):
        with open(outdir / f"rank{r}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    return ranks


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    if _mpi_missing():
        pytest.skip(_mpi_missing())
    return _job(tmp_path_factory, "worker_collectives")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if _mpi_missing():
        pytest.skip(_mpi_missing())
    return _job(tmp_path_factory, "worker_train")


DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "int32", "uint64", "bool",
          "complex64"]
SHAPES = [(), (5,), (4, 3), (0, 2)]
UFUNC = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def _np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_array_equal(got, want)


@needs_mpi
def test_the_job_has_two_ranks(coll):
    assert [(c["rank"], c["size"]) for c in coll] == [(0, 2), (1, 2)]


@needs_mpi
@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_reduce_matches_numpy(coll, op, dtype):
    for shape in SHAPES:
        inputs = [c[("in", dtype, shape)] for c in coll]
        assert inputs[0].dtype == _np_dtype(dtype)
        want = functools.reduce(UFUNC[op], inputs)
        for c in coll:
            _same(c[(op, dtype, shape)], want)


@needs_mpi
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_gather_matches_numpy(coll, dtype):
    for shape in SHAPES:
        inputs = [c[("in", dtype, shape)] for c in coll]
        want = np.stack(inputs) if shape == () else np.concatenate(inputs)
        for c in coll:
            _same(c[("gather", dtype, shape)], want)


@needs_mpi
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_scatter_matches_numpy(coll, dtype):
    for shape in [(4, 3), (0, 2)]:
        total = functools.reduce(np.add, [c[("in", dtype, shape)] for c in coll])
        k = shape[0] // 2
        for r, c in enumerate(coll):
            _same(c[("scatter", dtype, shape)], total[r * k:(r + 1) * k])


@needs_mpi
def test_max_and_min_propagate_nans(coll):
    a, b = coll[0]["nan_in"], coll[1]["nan_in"]
    for c in coll:
        np.testing.assert_array_equal(c["nan_max"], np.maximum(a, b))
        np.testing.assert_array_equal(c["nan_min"], np.minimum(a, b))
        assert np.isnan(c["nan_max"][0]) and np.isnan(c["nan_min"][2])


@needs_mpi
def test_a_dying_input_is_reduced_in_place(coll):
    ins = [c["donate_in"] for c in coll]
    for c in coll:
        assert c["donated"] == [True, False]
        _same(c["donate_sum"], ins[0] * 2 + ins[1] * 2)
        _same(c["donate_max"], np.maximum(*ins))


@needs_mpi
def test_collective_shapes_and_errors(coll):
    for c in coll:
        assert c["python_scalar"] == np.float32(5.0)
        assert c["gather_scalar_shape"] == (2,)
        assert c["scatter_err_shape"] == (
            "ValueError: [sum_scatter] Invalid shape=(3) for a group of size 2. The first "
            "dimension (axis 0) must be divisible by the group size and the input must have at "
            "least one dimension.")
        assert c["scatter_err_scalar"].startswith("ValueError: [sum_scatter] Invalid shape=() ")


@needs_mpi
def test_send_and_recv(coll):
    for r, c in enumerate(coll):
        prev = coll[1 - r]
        _same(c["ring_sent"], c["ring_in"])
        _same(c["ring_got"], prev["ring_in"])
        np.testing.assert_array_equal(c["big_got"], [2 - r, 2 - r])   # both sent before receiving
        _same(c["bf_got"], prev["bf_in"])
        assert c["empty_got_shape"] == (0, 3)
        np.testing.assert_array_equal(c["self_got"], [r, 10 * r])


@needs_mpi
def test_send_recv_errors(coll):
    for r, c in enumerate(coll):
        assert c["recv_too_small"] == (f"ValueError: [recv] Rank {1 - r} sent a larger array than "
                                       "the expected shape (5,) and dtype float32.")
        assert c["recv_too_large"] == (f"ValueError: [recv] Rank {1 - r} sent 8 bytes but shape "
                                       "(5,) and dtype float32 need 20.")
        assert c["send_bad_dst"] == "ValueError: [send] Invalid destination=2 for a group of size 2."
        assert c["recv_bad_src"] == "ValueError: [recv] Invalid source=-1 for a group of size 2."


@needs_mpi
def test_split_groups(coll):
    for r, c in enumerate(coll):
        assert (c["rev_rank"], c["rev_size"]) == (1 - r, 2)       # key reverses the order
        np.testing.assert_array_equal(c["rev_gather"], [1, 0])
        assert c["alone"] == (0, 1)
        np.testing.assert_array_equal(c["alone_sum"], [r + 1.0])
        np.testing.assert_array_equal(c["same_sum"], [3.0])
        assert c["same_rank"] == r
        assert c["split_negative"] == "ValueError: [split] color must be non-negative, got -1."


@needs_mpi
def test_vjp_follows_mlx_convention(coll):
    """Replicated outputs (all_sum, all_gather) pass this process's cotangent back; the
    sharded output of sum_scatter gathers every process's cotangent."""
    for r, c in enumerate(coll):
        ct = c["CT_MINE"]
        np.testing.assert_allclose(c[("vjp", "all_sum")], ct["all_sum"])
        np.testing.assert_allclose(c[("vjp", "all_gather")], ct["all_gather"][4 * r:4 * (r + 1)])
        np.testing.assert_allclose(c[("vjp", "sum_scatter")],
                                   np.concatenate([k["CT_MINE"]["sum_scatter"] for k in coll]))
        X = [k["X"] for k in coll]
        for name, pick in (("all_max", np.maximum), ("all_min", np.minimum)):
            won = c["X"] == pick(*X)
            np.testing.assert_allclose(c[("vjp", name)], np.where(won, ct[name], 0.0))
        np.testing.assert_allclose(c["grad_weighted_sum"], [1.0, 2.0, 3.0])
        np.testing.assert_allclose(c["grad_grad"], 6 * np.array([2.0, 7.0, 7.0]))
    # ties share the gradient
    np.testing.assert_allclose(coll[0]["ties_grad_max"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(coll[1]["ties_grad_max"], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(coll[0]["ties_grad_min"], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(coll[1]["ties_grad_min"], [0.5, 1.0, 0.0])


@needs_mpi
@pytest.mark.parametrize("name", ["all_sum", "all_max", "all_min", "all_gather", "sum_scatter"])
def test_jvp_matches_finite_differences(coll, name):
    for c in coll:
        jv, fd = c[("jvp", name)]
        np.testing.assert_allclose(jv, fd, rtol=1e-6, atol=1e-8)


@needs_mpi
@pytest.mark.parametrize("name", ["all_sum", "all_max", "all_min", "all_gather", "sum_scatter"])
def test_vjp_is_the_adjoint_of_jvp(coll, name):
    lhs = sum(c[("adjoint", name)][0] for c in coll)
    rhs = [c[("adjoint", name)][1] for c in coll]
    # replicated outputs count once; sum_scatter's shards add up over the processes
    expected = sum(rhs) if name == "sum_scatter" else rhs[0]
    if name != "sum_scatter":
        assert rhs[0] == pytest.approx(rhs[1], rel=1e-12)
    assert lhs == pytest.approx(expected, rel=1e-10)


@needs_mpi
@pytest.mark.parametrize("name", ["all_sum", "all_max", "all_min", "all_gather", "sum_scatter"])
@pytest.mark.parametrize("axis", [0, 1])
def test_vmap_matches_a_loop(coll, name, axis):
    for c in coll:
        batched, loop = c[("vmap", name, axis)]
        _same(batched, loop)


@needs_mpi
def test_vmap_of_scalar_gather_and_point_to_point(coll):
    for r, c in enumerate(coll):
        batched, loop = c[("vmap", "gather_scalars")]
        _same(batched, loop)
        _same(c["vmap_send"], c["XB"])
        _same(c["vmap_recv"], coll[1 - r]["XB"])
        # send passes its gradient through; recv_like's input gets none
        np.testing.assert_array_equal(c["grad_through_recv_like"], [2.0, 2.0, 2.0])


@needs_mpi
def test_compile_and_async_eval(coll):
    for c in coll:
        for i in range(2):
            a = [k["compile_in"][i] for k in coll]
            np.testing.assert_allclose(c["compile_out"][i], (a[0] + a[1]) * 2 + np.maximum(a[0], a[1]),
                                       rtol=1e-6)
        np.testing.assert_array_equal(c["async"], coll[0]["compile_in"][0] + coll[1]["compile_in"][0])
        assert c["compile_recv"].startswith("ValueError: [recv] recv has no inputs, so mx.compile")


@needs_mpi
@pytest.mark.parametrize("label, calls", [
    ("grouped", [((11,), "float32"), ((7,), "float32"), ((4,), "float16")]),
    ("single", [((3, 2), "float32"), ((5,), "float32"), ((2, 2), "float16"), ((7,), "float32")]),
    ("default", [((18,), "float32"), ((4,), "float16")]),
    ("bf16", [((22,), "bfloat16")]),
])
def test_average_gradients_across_processes(coll, label, calls):
    ins = [c["grads_in"] for c in coll]
    leaves = [[g["a"], g["b"][0], g["b"][1], g["c"]] for g in ins]
    if label == "bf16":
        bf = np.dtype(ml_dtypes.bfloat16)
        want = [(a.astype(bf) + b.astype(bf)).astype(a.dtype) / 2 for a, b in zip(*leaves)]
    else:
        want = [(a + b) / 2 for a, b in zip(*leaves)]
    for c in coll:
        assert c[("avg_calls", label)] == calls
        out = c[("avg", label)]
        got = [out["a"], out["b"][0], out["b"][1], out["c"]]
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-6)


@needs_mpi
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_data_parallel_training_matches_one_process(trained, mode):
    ref_params, ref_losses = trained[0]["alone"]
    (p0, l0), (p1, l1) = trained[0][mode], trained[1][mode]
    assert l0 == l1
    np.testing.assert_allclose(l0, ref_losses, rtol=1e-5)
    assert ref_losses[-1] < 0.5 * ref_losses[0]           # it did learn
    assert sorted(p0) == sorted(ref_params)
    for k in ref_params:
        np.testing.assert_array_equal(p0[k], p1[k])        # the replicas never drift apart
        np.testing.assert_allclose(p0[k], ref_params[k], rtol=1e-5, atol=1e-6)


@needs_mpi
def test_a_silent_peer_raises_timeout_instead_of_hanging():
    proc, seconds = _run(_mpirun(2) + [sys.executable, os.path.join(WORKERS, "worker_misc.py"),
                                       "timeout"], MX_DISTRIBUTED_TIMEOUT="1")
    assert "TIMEOUT after 1." in proc.stdout, proc.stdout + proc.stderr
    assert "[all_sum] Rank 0 of a group of 2 waited 1 s for the other processes" in proc.stdout
    assert "THEN: [all_sum] The distributed group is unusable" in proc.stdout
    assert "aborting the MPI job so that the other processes do not wait forever" in proc.stderr
    assert proc.returncode != 0
    assert seconds < 30          # rank 1 would have slept 60 s: the job was ended


@needs_mpi
def test_a_dead_peer_ends_the_job():
    proc, seconds = _run(_mpirun(2) + [sys.executable, os.path.join(WORKERS, "worker_misc.py"),
                                       "dies"])
    assert "NO ERROR" not in proc.stdout
    assert proc.returncode != 0
    assert seconds < 30


@needs_mpi
def test_real_mpi_group_of_one_under_launcher_variables_warns_and_strict_raises():
    proc, _ = _run([sys.executable, os.path.join(WORKERS, "worker_misc.py"), "init"],
                   MX_WORLD_SIZE="2", MX_GPU="0")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["size"] == 1
    assert res["warning_types"] == ["RuntimeWarning"]
    assert res["warnings"][0].startswith("[distributed] The launcher started 2 processes "
                                         "(MX_WORLD_SIZE=2) but this process is in a group of "
                                         "size 1: the mpi backend came up with a group of size 1")
    assert res["strict"] == res["warnings"][0]


@needs_mpi
def test_mx_launch_starts_the_processes():
    proc, _ = _run([sys.executable, "-m", "mx.launch", "-n", "2",
                    os.path.join(WORKERS, "worker_misc.py"), "launch", "--flag", "x"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = sorted((json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")),
                   key=lambda d: d["rank"])
    assert lines == [{"rank": r, "size": 2, "world": "2", "argv": ["--flag", "x"], "sum": 3}
                     for r in range(2)]
