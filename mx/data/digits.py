"""Procedurally rendered handwritten-style digits: a small, self-contained data set.

Each digit 0-9 is a set of pen strokes (polylines and quadratic Bézier curves) in a unit
box. A sample bends the strokes with a smooth random displacement field, applies a random
affine map (rotation, scale, shear, shift), draws them with a random pen width and
anti-aliasing, and adds sensor noise and the odd stray mark. Rendering is vectorised
NumPy (distance from every pixel centre to every stroke segment), so a few thousand
16x16 images take about a second and the same seed always gives the same images: no
download, nothing stored in the package.

    from mx.data.digits import load
    (x_train, y_train), (x_test, y_test) = load()     # float32 in [0, 1], int32 labels
"""
from __future__ import annotations

import numpy as np

SIZE = 16                # images are SIZE x SIZE
CLASSES = 10
DATA_SEED = 20240611     # fixed: every run of the demo sees the same data set


def _bezier(p0, p1, p2, n=10):
    """Quadratic Bézier from p0 to p2 pulled towards p1, as n+1 points."""
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _ellipse(cx, cy, rx, ry, start=0.0, stop=360.0, n=16):
    """Arc of an ellipse, angles in degrees; y grows downwards, so 270 is the top."""
    a = np.deg2rad(np.linspace(start, stop, n + 1))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _line(*points):
    return np.asarray(points, dtype=np.float64)


# Strokes of each digit in a unit box (x right, y down), roughly as a person writes them.
GLYPHS = {
    0: [_ellipse(0.5, 0.5, 0.28, 0.4, n=20)],
    1: [_line((0.33, 0.25), (0.52, 0.1), (0.52, 0.9))],
    2: [np.concatenate([_ellipse(0.5, 0.32, 0.26, 0.22, 190, 380, 10),
                        _bezier((0.74, 0.39), (0.45, 0.65), (0.22, 0.9), 6)[1:],
                        _line((0.8, 0.9))])],
    3: [_ellipse(0.48, 0.3, 0.25, 0.2, 200, 450, 12),
        _ellipse(0.48, 0.7, 0.28, 0.2, 270, 520, 12)],
    4: [_line((0.62, 0.9), (0.62, 0.1), (0.18, 0.64), (0.84, 0.64))],
    5: [np.concatenate([_line((0.76, 0.1), (0.3, 0.1), (0.27, 0.46)),
                        _ellipse(0.5, 0.66, 0.27, 0.24, 225, 510, 12)])],
    6: [np.concatenate([_bezier((0.72, 0.1), (0.24, 0.22), (0.24, 0.68), 8),
                        _ellipse(0.5, 0.68, 0.26, 0.22, 180, 540, 16)[1:]])],
    7: [_line((0.2, 0.1), (0.8, 0.1), (0.42, 0.9))],
    8: [_ellipse(0.5, 0.29, 0.21, 0.19, n=16), _ellipse(0.5, 0.7, 0.26, 0.21, n=16)],
    9: [np.concatenate([_ellipse(0.5, 0.32, 0.25, 0.22, 0, 360, 16),
                        _bezier((0.75, 0.32), (0.74, 0.7), (0.6, 0.9), 6)[1:]])],
}


def _segments():
    """(10, S, 2, 2) stroke segments per digit, padded to a common count S by repeating a
    segment (a repeated segment leaves the distance to the glyph unchanged)."""
    per_digit = []
    for d in range(CLASSES):
        segs = np.concatenate([np.stack([s[:-1], s[1:]], axis=1) for s in GLYPHS[d]])
        per_digit.append(segs)
    count = max(len(s) for s in per_digit)
    padded = [np.concatenate([s, np.repeat(s[:1], count - len(s), axis=0)]) for s in per_digit]
    return np.stack(padded).astype(np.float32)


def _warp(points, rng, n):
    """Bend (n, ..., 2) unit-box points: a smooth sinusoidal displacement field (wobbly
    handwriting), then rotation, anisotropic scale, shear and shift; result in pixels."""
    shape = (n,) + (1,) * (points.ndim - 2)
    amp = rng.uniform(0.0, 0.05, (n, 2)).reshape(shape + (2,))
    freq = rng.uniform(2.0, 5.0, (n, 2)).reshape(shape + (2,))
    phase = rng.uniform(0, 2 * np.pi, (n, 2)).reshape(shape + (2,))
    # x moves with y and y with x, so straight strokes come out gently curved.
    points = points + amp * np.sin(freq * points[..., ::-1] + phase)

    theta = np.deg2rad(rng.normal(0.0, 9.0, n))
    scale = rng.uniform(0.7, 0.95, (n, 2)) * SIZE
    shear = rng.normal(0.0, 0.15, n)
    cos, sin = np.cos(theta), np.sin(theta)
    # Linear part A = R(theta) @ Shear @ diag(scale), per sample.
    a = np.empty((n, 2, 2))
    a[:, 0, 0] = cos * scale[:, 0]
    a[:, 0, 1] = (cos * shear - sin) * scale[:, 1]
    a[:, 1, 0] = sin * scale[:, 0]
    a[:, 1, 1] = (sin * shear + cos) * scale[:, 1]
    shift = SIZE / 2 + rng.normal(0.0, 1.0, (n, 2))
    centred = points - 0.5
    out = np.einsum("nij,n...j->n...i", a, centred.reshape(n, -1, 2)).reshape(centred.shape)
    return (out + shift.reshape(shape + (2,))).astype(np.float32)


def _distance(pixels, segs):
    """Distance from each pixel centre (P, 2) to the nearest of each sample's segments
    (n, S, 2, 2): (n, P). x and y are handled as separate planes, which keeps the big
    (n, P, S) temporaries few and contiguous."""
    ax, ay = segs[:, None, :, 0, 0], segs[:, None, :, 0, 1]          # (n, 1, S)
    abx = segs[:, None, :, 1, 0] - ax
    aby = segs[:, None, :, 1, 1] - ay
    inv_len2 = 1.0 / np.maximum(abx * abx + aby * aby, 1e-12)
    apx = pixels[None, :, None, 0] - ax                              # (n, P, S)
    apy = pixels[None, :, None, 1] - ay
    t = apx * abx
    t += apy * aby
    t *= inv_len2
    np.clip(t, 0.0, 1.0, out=t)
    apx -= t * abx                                                   # now pixel - closest
    apy -= t * aby
    apx *= apx
    apy *= apy
    apx += apy
    return np.sqrt(apx.min(axis=-1))


def render(labels, rng, chunk=512):
    """Images (len(labels), SIZE, SIZE) float32 in [0, 1] of the given digits."""
    labels = np.asarray(labels)
    base = _segments()
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)
    images = np.empty((len(labels), SIZE * SIZE), np.float32)
    for lo in range(0, len(labels), chunk):
        lab = labels[lo:lo + chunk]
        n = len(lab)
        segs = _warp(base[lab], rng, n)
        dist = _distance(pixels, segs)
        width = rng.uniform(0.5, 1.1, (n, 1))                        # pen half-width, px
        ink = np.clip(width + 0.5 - dist, 0.0, 1.0)                  # anti-aliased edge
        ink *= rng.uniform(0.7, 1.0, (n, 1))                         # pen pressure
        images[lo:lo + n] = ink
    images = images.reshape(-1, SIZE, SIZE)
    _stray_marks(images, rng)
    images += rng.normal(0.0, 0.08, images.shape).astype(np.float32)
    return np.clip(images, 0.0, 1.0)


def _stray_marks(images, rng, rate=0.15):
    """A short random scratch on about `rate` of the images (in place)."""
    n = len(images)
    hit = np.flatnonzero(rng.random(n) < rate)
    if len(hit) == 0:
        return
    start = rng.uniform(0, SIZE, (len(hit), 2))
    end = start + rng.normal(0, 2.5, (len(hit), 2))
    segs = np.stack([start, end], axis=1)[:, None].astype(np.float32)  # (h, 1, 2, 2)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)
    mark = np.clip(0.9 - _distance(pixels, segs), 0.0, 1.0).reshape(-1, SIZE, SIZE)
    images[hit] = np.maximum(images[hit], 0.6 * mark)


def load(n_train=6000, n_test=1000, seed=DATA_SEED):
    """((x_train, y_train), (x_test, y_test)): float32 images (n, 16, 16) in [0, 1] and
    int32 labels, classes balanced and shuffled. Train and test come from one stream of
    independent random draws, so no test image repeats a training image."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.permutation(np.arange(n) % CLASSES).astype(np.int32)
    images = render(labels, rng)
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


def ascii_art(image, ramp=" .:-=+*#%@"):
    """One image as text, darkest ink as '@' (for a quick look at the data)."""
    idx = np.clip((np.asarray(image) * (len(ramp) - 1)).round().astype(int), 0, len(ramp) - 1)
    return "\n".join("".join(ramp[i] * 2 for i in row) for row in idx)
