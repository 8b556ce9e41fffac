"""What a run reports: accuracy figures from predictions, and the run directory's plots.

Pure numpy + matplotlib (Agg), no TensorFlow, so the figures can be recomputed from saved
predictions. Plots are written atomically as PNG.

    from training.report import split_metrics, plot_curves, plot_confusion, plot_filters
    m = split_metrics(probs, labels, class_labels)      # {"top1", "top3", "count", "per_class": [...]}
    plot_curves(history_rows, "RUN/curves.png")
    plot_confusion(confusion_matrix(probs, labels, 20), class_labels, "RUN/confusion.png")
    plot_filters(conv1_kernel, "RUN/filters.png")        # kernel [k, k, 3, filters]
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bundle.atomic import write_bytes_atomic  # noqa: E402


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """bool [n]: the label is among the k best scores (probabilities or log-probabilities). A stable
    sort, so that ties (frequent in int8 outputs' 1/256 steps) go to the lower index every time."""
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (best == labels[:, None]).any(axis=1)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    return float(top_k_hits(scores, labels, k).mean())


def confusion_matrix(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, probs.argmax(axis=1)), 1)
    return cm


def split_metrics(probs: np.ndarray, labels, class_labels: list[str], class_wnids: list[str]) -> dict:
    """Top-1/top-3 and per-class accuracy (None for a class with no images in the split)."""
    labels = np.asarray(labels, dtype=np.int64)
    cm = confusion_matrix(probs, labels, len(class_labels))
    per_class = []
    for i, (wnid, label) in enumerate(zip(class_wnids, class_labels)):
        n = int(cm[i].sum())
        per_class.append(
            {"wnid": wnid, "label": label, "count": n, "accuracy": round(float(cm[i, i] / n), 4) if n else None}
        )
    return {
        "top1": round(top_k_accuracy(probs, labels, 1), 4),
        "top3": round(top_k_accuracy(probs, labels, 3), 4),
        "count": int(len(labels)),
        "per_class": per_class,
    }


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def plot_curves(rows: list[dict], path: str | Path) -> None:
    """Loss and top-1 accuracy per epoch, train (augmented, dropout on) vs val."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "top-1 accuracy")):
        ax.plot(epochs, [r[key] for r in rows], "o-", label="train (augmented)")
        ax.plot(epochs, [r[f"val_{key}"] for r in rows], "o-", label="val")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_confusion(cm: np.ndarray, class_labels: list[str], path: str | Path, title: str = "") -> None:
    """Row-normalized confusion matrix (each row: where that class's images went)."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    n = len(class_labels)
    fig, ax = plt.subplots(figsize=(0.45 * n + 3, 0.45 * n + 2))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), class_labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_filters(kernel: np.ndarray, path: str | Path) -> None:
    """First-layer filters as small RGB pictures, each stretched to its own 0..1 range."""
    k = np.asarray(kernel, dtype=np.float32)
    count = k.shape[-1]
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < count:
            f = k[..., i]
            ax.imshow((f - f.min()) / max(float(f.max() - f.min()), 1e-8), interpolation="nearest")
    fig.suptitle("conv1 filters")
    _save(fig, path)
