"""python -m mx.demo (training end to end with a compiled step) and its data, mx.data.digits."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import mx.core as mx
from mx import demo
from mx.core import compiler
from mx.data import digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_demo(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = demo.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def one_epoch():
    """One short training run, shared by the tests that read its output."""
    return run_demo("--epochs", "1", "--seed", "3")


# ---------------------------------------------------------------------------------------
# the demo's output
# ---------------------------------------------------------------------------------------
BAR = re.compile(r"epoch 1/1 \[([#.]{24})\] +(\d+)/94  loss (\d+\.\d{4})  ([\d,]+) samples/s")
FINAL = re.compile(r"test accuracy: (\d+\.\d\d)% \((\d+)/1000\) after 1 epoch; "
                   r"([\d,]+) samples/s, total \d+\.\d s\n$")


def test_exit_status_and_no_errors(one_epoch):
    code, _, err = one_epoch
    assert code == 0
    assert err == ""


def test_header_names_data_model_and_compiled_step(one_epoch):
    lines = one_epoch[1].split("\n")
    assert re.fullmatch(r"mx \S+ on Device\(cpu, 0\): 6,000 training and 1,000 test digits "
                        r"\(16x16\), made in \d+\.\d s", lines[0])
    assert re.fullmatch(r"model: MLP 256-256-128-10 \(99,978 parameters\), Adam lr=0\.002, "
                        r"batch 64, compiled step \(traced and built in the first steps\)", lines[1])


def test_progress_bar_redraws_in_place_with_loss_and_throughput(one_epoch):
    epoch_line = one_epoch[1].split("\n")[2]
    frames = epoch_line.split("\r")
    assert frames[0] == ""                       # every frame starts with a carriage return
    bars = [BAR.match(f) for f in frames[1:]]
    assert all(bars), frames
    steps = [int(m.group(2)) for m in bars]
    assert steps == sorted(steps) and steps[-1] == 94
    last = bars[-1]
    assert last.group(1) == "#" * 24
    assert int(last.group(4).replace(",", "")) > 0
    # the last frame carries the epoch's test accuracy and time after the bar
    assert re.search(r"samples/s +test accuracy \d+\.\d%  \(\d+\.\d s\)$", frames[-1])


def test_loss_falls_during_the_epoch(one_epoch):
    frames = one_epoch[1].split("\n")[2].split("\r")[1:]
    losses = [float(BAR.match(f).group(3)) for f in frames]
    assert losses[-1] < 0.5 * np.log(10)        # far below the loss of a uniform guess


def test_final_accuracy_beats_chance_by_a_wide_margin(one_epoch):
    m = FINAL.search(one_epoch[1])
    assert m, one_epoch[1][-300:]
    acc, correct = float(m.group(1)), int(m.group(2))
    assert acc == pytest.approx(correct / 10, abs=0.005)
    assert acc > 80.0                            # chance is 10%


def _small_data(monkeypatch, n_train=1024, n_test=200):
    load = digits.load
    monkeypatch.setattr(demo.digits, "load", lambda: load(n_train=n_train, n_test=n_test))


SMALL_FINAL = re.compile(r"test accuracy: (\d+\.\d\d)% \((\d+)/200\)")


def test_same_seed_same_result(monkeypatch):
    # Initialisation, shuffling and dropout all follow --seed: two runs agree on every
    # printed loss and on the accuracy (timings aside); another seed does not.
    _small_data(monkeypatch)

    def results(seed):
        out = run_demo("--epochs", "2", "--seed", seed, "--batch-size", "128")[1]
        # (each epoch's last frame: how many frames come before it depends on timing)
        epoch_losses = re.findall(r"loss (\d+\.\d+) +[\d,]+ samples/s +test accuracy", out)
        assert len(epoch_losses) == 2
        return epoch_losses, SMALL_FINAL.search(out).group(1, 2)

    a, b, c = results("5"), results("5"), results("6")
    assert a == b
    assert a[0] != c[0]


def test_eager_flag_reported(monkeypatch):
    # The eager path is exercised in test_compiled_and_eager_steps_agree; here only the
    # header: shrink the data so the run is quick.
    _small_data(monkeypatch, n_train=128, n_test=20)
    code, out, _ = run_demo("--epochs", "1", "--no-compile", "--batch-size", "128")
    assert code == 0
    assert "batch 128, eager step" in out
    assert re.search(r"test accuracy: \d+\.\d\d% \(\d+/20\) after 1 epoch;", out)


# ---------------------------------------------------------------------------------------
# arguments and devices
# ---------------------------------------------------------------------------------------
NO_GPU_MESSAGE = "error: --device gpu was requested but no GPU is available to mx"


@pytest.mark.skipif(mx.is_available(mx.gpu), reason="this machine has a GPU")
def test_gpu_without_gpu_is_a_clear_error():
    code, out, err = run_demo("--device", "gpu")
    assert code == 2
    assert out == ""                             # nothing was trained
    assert err.startswith(NO_GPU_MESSAGE)
    assert "run with --device cpu" in err


def test_gpu_missing_error_path_on_any_machine(monkeypatch):
    monkeypatch.setattr(demo.mx, "is_available", lambda device: device == mx.cpu)
    code, out, err = run_demo("--device", "gpu", "--epochs", "1")
    assert (code, out) == (2, "")
    assert err.startswith(NO_GPU_MESSAGE)
    assert mx.default_device() == mx.cpu


@pytest.mark.skipif(mx.is_available(mx.gpu), reason="this machine has a GPU")
def test_gpu_without_gpu_exit_status_of_the_process():
    proc = subprocess.run([sys.executable, "-m", "mx.demo", "--device", "gpu"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(NO_GPU_MESSAGE)
    assert proc.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], r"argument --epochs: must be a positive integer, got 0"),
    (["--batch-size", "-4"], r"argument --batch-size: must be a positive integer, got -4"),
    (["--device", "tpu"], r"argument --device: invalid choice: 'tpu'"),
    (["--seed", "x"], r"argument --seed: invalid int value: 'x'"),
])
def test_bad_arguments_exit_with_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        demo.parse_args(argv)
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_defaults():
    args = demo.parse_args([])
    assert (args.device, args.epochs, args.batch_size, args.seed, args.no_compile) == \
        ("cpu", 6, 64, 0, False)


# ---------------------------------------------------------------------------------------
# the compiled training step
# ---------------------------------------------------------------------------------------
def _batches(n, size=32, seed=0):
    (x, y), _ = digits.load(n_train=n * size, n_test=10, seed=seed)
    return [(mx.array(x[i * size:(i + 1) * size]), mx.array(y[i * size:(i + 1) * size]))
            for i in range(n)]


def _train(compiled, batches, seed=7):
    model, optimizer = demo.build(seed)
    step = demo.make_step(model, optimizer, compiled=compiled)
    losses = []
    for x, y in batches:
        loss = step(x, y)
        mx.eval(loss, model.state, optimizer.state)
        losses.append(loss.item())
    return np.array(losses), model


def test_compiled_and_eager_steps_agree():
    # Same seed, same batches: the compiled step must give the losses and parameters of
    # the eager one, dropout masks included (mx.random.state is threaded through compile).
    batches = _batches(6)
    eager, eager_model = _train(False, batches)
    compiled, compiled_model = _train(True, batches)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    assert eager[-1] < eager[0]                  # the steps did train
    for (name, a), (_, b) in zip(demo.tree_flatten(eager_model.parameters()),
                                 demo.tree_flatten(compiled_model.parameters())):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.skipif(not compiler._state["enabled"], reason="mx.compile is disabled (MX_DISABLE_COMPILE)")
def test_compiled_step_traces_once(monkeypatch):
    calls = []

    def counting_loss(model, x, y):
        calls.append(1)
        return demo.nn.losses.cross_entropy(model(x), y, reduction="mean")

    monkeypatch.setattr(demo, "loss_fn", counting_loss)
    batches = _batches(4)
    losses, _ = _train(True, batches)
    assert len(calls) == 1                       # traced on the first call, replayed after
    assert np.all(np.isfinite(losses))
    assert len(set(losses.tolist())) == 4        # and the replays really did new work


def test_dropout_uses_the_random_state():
    # Same seed and batches, different random state before training: the dropout masks,
    # hence the losses, differ; so the state the step captures is the one that is used.
    batches = _batches(2)
    model, optimizer = demo.build(7)
    step = demo.make_step(model, optimizer)
    mx.random.seed(1)
    a = step(*batches[0]).item()
    model2, optimizer2 = demo.build(7)
    step2 = demo.make_step(model2, optimizer2)
    mx.random.seed(2)
    b = step2(*batches[0]).item()
    assert a != b


def test_accuracy_counts_argmax_hits():
    class Fixed(demo.nn.Module):
        def __call__(self, x):                  # predicts the class stored in pixel 0
            return mx.eye(10)[x.reshape(x.shape[0], -1)[:, 0].astype(mx.int32)]

    images = np.zeros((5, 16, 16), np.float32)
    images[:, 0, 0] = [1, 2, 3, 4, 5]
    labels = np.array([1, 2, 0, 4, 0], np.int32)
    assert demo.accuracy(Fixed(), images, labels, batch_size=2) == pytest.approx(0.6)


def test_progress_pads_a_shorter_line():
    out = io.StringIO()
    bar = demo.Progress(out, 1, 1, 10, min_interval=0.0)
    bar.update(1, 12.3456, 10_000_000)
    first = out.getvalue()
    bar.update(10, 0.1, 10, final=True)
    second = out.getvalue()[len(first):]
    assert first.startswith("\r") and second.startswith("\r")
    assert len(second) >= len(first)            # the old, longer frame is fully overwritten
    assert "[########################] 10/10  loss 0.1000" in second


# ---------------------------------------------------------------------------------------
# the data set
# ---------------------------------------------------------------------------------------
def test_digits_shapes_ranges_and_balance():
    (x, y), (xt, yt) = digits.load(n_train=200, n_test=50)
    assert x.shape == (200, 16, 16) and xt.shape == (50, 16, 16)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(np.concatenate([y, yt]), minlength=10).tolist() == [25] * 10
    # every image carries ink (not just noise), and the images are all different
    assert (x.reshape(200, -1) > 0.5).sum(1).min() >= 8
    assert len(np.unique(x.reshape(200, -1), axis=0)) == 200


def test_digits_deterministic_and_seeded():
    a = digits.load(n_train=30, n_test=10)
    b = digits.load(n_train=30, n_test=10)
    c = digits.load(n_train=30, n_test=10, seed=1)
    for u, v in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0][0], c[0][0])


def test_digit_classes_are_distinguishable_by_a_template_match():
    # Nearest class mean of clean renderings: well above chance, so the classes differ in
    # shape (not in a label-independent way).
    (x, y), (xt, yt) = digits.load(n_train=1000, n_test=300, seed=11)
    means = np.stack([x[y == k].mean(0).ravel() for k in range(10)])
    pred = np.argmin(((xt.reshape(300, 1, -1) - means) ** 2).sum(-1), axis=1)
    assert (pred == yt).mean() > 0.5


def test_distance_to_a_segment():
    pixels = np.array([[0.0, 0.0], [2.0, 1.0], [5.0, 0.0]], np.float32)
    seg = np.array([[[[1.0, 0.0], [3.0, 0.0]]]], np.float32)      # one sample, one segment
    np.testing.assert_allclose(digits._distance(pixels, seg), [[1.0, 1.0, 2.0]])


def test_ascii_art():
    img = np.zeros((16, 16), np.float32)
    img[3, 4] = 1.0
    rows = digits.ascii_art(img).split("\n")
    assert len(rows) == 16 and rows[3] == "  " * 4 + "@@" + "  " * 11
