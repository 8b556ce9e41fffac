"""Accuracy bounds that mean something: "better than guessing", as a one-sided binomial test.

    from chance import assert_beats_chance
    assert_beats_chance(metrics, ("val", "test"), k=1, classes=20)   # top-1 over both splits, p < 0.001

A fixed bound such as "top-1 >= 0.12" on ~120 photos sits within noise of a weak-but-real model
(one photo is 0.8 points), so it flips when the data shifts. The binomial tail asks the real
question: how likely is this many correct answers from a model that guesses uniformly?
"""

from __future__ import annotations

from math import comb


def binomial_tail(correct: int, n: int, p: float) -> float:
    """P(X >= correct) for X ~ Binomial(n, p)."""
    return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(correct, n + 1))


def assert_beats_chance(metrics: dict, splits: tuple[str, ...], k: int, classes: int, alpha: float = 1e-3) -> None:
    """Top-k over ``splits`` of a run's metrics.json pooled; a uniform guesser reaches it with
    probability < ``alpha``."""
    key = f"top{k}"
    n = sum(metrics[s]["count"] for s in splits)
    correct = round(sum(metrics[s][key] * metrics[s]["count"] for s in splits))
    p_value = binomial_tail(correct, n, k / classes)
    assert p_value < alpha, (
        f"{key} {correct}/{n} on {'+'.join(splits)} is what guessing among {classes} "
        f"classes gives with p = {p_value:.2g} (>= {alpha})"
    )
