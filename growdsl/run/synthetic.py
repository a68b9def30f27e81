"""Small tasks generated in process: no files, deterministic under a seed, quick to train.

Each generator returns `(x, y)` as numpy arrays: `x` float features, `y` integer labels for the
classification tasks and float targets `[n, 1]` for the regression toy `wave`. scikit-learn is
imported inside the generators that use it: it takes a second to import, and `growdsl check`
imports this module (through the data catalog) without generating anything.
"""

from __future__ import annotations

from growdsl.lazy import np


def spirals(n: int, noise: float, turns: float, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`classes` interleaved spiral arms in the plane; `turns` full turns each, Gaussian noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    # sqrt spreads points evenly along the arm's length rather than crowding its centre
    t = np.sqrt(rng.uniform(0.05, 1.0, n)) * turns * 2 * np.pi
    angle = t + 2 * np.pi * y / classes
    radius = t / (turns * 2 * np.pi)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise * 0.1, x.shape)  # noise is relative to the outer radius 1 / 10
    return x.astype(np.float32), y


def moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's make_moons)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return x.astype(np.float32), y


def circles(n: int, noise: float, factor: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small circle inside a large one (scikit-learn's make_circles)."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return x.astype(np.float32), y


def blobs(n: int, classes: int, dim: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, one per class, in `dim` dimensions."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, centers=classes, n_features=dim, cluster_std=spread, random_state=seed)
    return x.astype(np.float32), y


def wave(n: int, noise: float, freq: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D regression: y = sin(freq x) + noise on x uniform in [-pi, pi]; the toy on which
    splitting steepest descent is usually first shown to escape a too-small network."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-np.pi, np.pi, (n, 1))
    y = np.sin(freq * x) + rng.normal(0.0, noise, (n, 1))
    return x.astype(np.float32), y.astype(np.float32)


CHUNK = 4096  # images generated at a time (noise for a whole CIFAR-sized set at once is large)


def patterns(n: int, size: list[int], channels: int, classes: int, noise: float, seed: int) -> tuple:
    """Images of `classes` kinds, uint8 [n, channels, H, W] (a torch tensor: generated with torch,
    several times faster than numpy's float64 for CIFAR's 150 million pixels), and labels: each
    class a smooth random template (a 4x4 grid of random colours, upsampled, edges softened), each
    image its class's template shifted cyclically by up to an eighth of the image each way, plus
    Gaussian pixel noise of std `noise` (in [0, 1] units). CIFAR-shaped by default: for benchmarks
    and tests where the real files are absent."""
    from growdsl.lazy import torch

    gen = torch.Generator().manual_seed(seed)
    h, w = size
    coarse = torch.rand(classes, channels, 4, 4, generator=gen)
    templates = coarse[:, :, torch.arange(h) * 4 // h][:, :, :, torch.arange(w) * 4 // w]
    templates = (templates + templates.roll(1, 2) + templates.roll(1, 3)) / 3
    y = torch.arange(n) % classes
    shift_rows = torch.randint(-(h // 8), h // 8 + 1, (n, 1), generator=gen)
    shift_cols = torch.randint(-(w // 8), w // 8 + 1, (n, 1), generator=gen)
    x = torch.empty((n, channels, h, w), dtype=torch.uint8)
    for start in range(0, n, CHUNK):
        part = slice(start, min(n, start + CHUNK))
        m = len(y[part])
        rows = (torch.arange(h) - shift_rows[part]) % h  # [m, h]: the template row each row shows
        cols = (torch.arange(w) - shift_cols[part]) % w
        batch = templates[y[part]]
        batch = batch.gather(2, rows[:, None, :, None].expand(m, channels, h, w))
        batch = batch.gather(3, cols[:, None, None, :].expand(m, channels, h, w))
        batch += noise * torch.randn(batch.shape, generator=gen)
        x[part] = batch.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
    return x, y
