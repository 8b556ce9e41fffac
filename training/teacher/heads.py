"""Teacher features -> log-probabilities over a dataset's K = C + 1 outputs (C classes + "other").

Two heads:
- ``imagenet``: the teacher's own 1000-way softmax read at the dataset's wnids; "other" gets the
  remaining mass, 1 - sum. Only when every class is an ImageNet-1k wnid.
- ``fitted``: multinomial logistic regression (L2) on the frozen pooled features of the train
  split (office photos by class, train-side non-office photos as "other"), full-batch Adam on
  standardized features; the L2 strength is picked by val log-loss. Works for any classes.

    from training.teacher.heads import imagenet_log_probs, fit_linear_head, log_loss
    lp = imagenet_log_probs(teacher.imagenet_logits(feats), ["n03085013", ...])   # [N, C + 1]
    head = fit_linear_head(train_x, train_y, val_x, val_y, k=C + 1)
    lp = head.log_probs(feats)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.report import top_k_accuracy
from training.teacher.registry import IMAGENET_WNIDS

MIN_PROB = 1e-6  # floor of p(other) when the named classes take (nearly) all the mass
L2_GRID = (1e-3, 1e-2, 1e-1)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def imagenet_log_probs(logits: np.ndarray, wnids: list[str]) -> np.ndarray:
    """1000 ImageNet logits -> log p over the given wnids plus "other" (float32 [N, len + 1])."""
    missing = [w for w in wnids if w not in IMAGENET_WNIDS]
    if missing:
        raise ValueError(f"classes {missing[:3]} are not ImageNet-1k classes: use the fitted head")
    named = np.exp(log_softmax(logits.astype(np.float64))[:, [IMAGENET_WNIDS.index(w) for w in wnids]])
    other = np.maximum(1.0 - named.sum(axis=1, keepdims=True), MIN_PROB)
    probs = np.concatenate([named, other], axis=1)
    return np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def log_loss(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true outputs."""
    return float(-log_probs[np.arange(len(labels)), labels].mean())


@dataclass
class LinearHead:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [D, K]
    bias: np.ndarray  # [K]
    l2: float

    def log_probs(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return log_softmax(z).astype(np.float32)


def _fit(x: np.ndarray, y: np.ndarray, k: int, l2: float, steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    n, d = x.shape
    w, b = np.zeros((d, k), np.float32), np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)[y]
    moments = [[np.zeros_like(w), np.zeros_like(w)], [np.zeros_like(b), np.zeros_like(b)]]
    for step in range(1, steps + 1):
        p = np.exp(log_softmax(x @ w + b))
        err = (p - onehot) / n
        grads = (x.T @ err + l2 * w, err.sum(axis=0))
        for param, grad, (m, v) in zip((w, b), grads, moments):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return w, b


def fit_linear_head(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    k: int,
    l2_grid: tuple[float, ...] = L2_GRID,
    steps: int = 300,
    lr: float = 0.01,
    progress=print,
) -> tuple[LinearHead, dict]:
    """Fit one head per L2 strength on train, keep the lowest val log-loss; returns it and the
    val log-loss of every strength tried."""
    mean = train_x.mean(axis=0)
    scale = train_x.std(axis=0) + 1e-6
    xs = ((train_x - mean) / scale).astype(np.float32)
    best, tried = None, {}
    for l2 in l2_grid:
        head = LinearHead(mean, scale, *_fit(xs, train_y, k, l2, steps, lr), l2)
        tried[l2] = round(log_loss(head.log_probs(val_x), val_y), 4)
        val_top1 = top_k_accuracy(head.log_probs(val_x), val_y, 1)
        progress(f"fitted head: L2 {l2:g}: val log-loss {tried[l2]:.4f}, top-1 {val_top1:.3f}")
        if best is None or tried[l2] < tried[best.l2]:
            best = head
    return best, {str(k_): v for k_, v in tried.items()}
