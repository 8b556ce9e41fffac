"""The "not an office object" rule as every consumer applies it: the manifest's ``abstain`` section.

    from bundle.abstain import abstains, scores
    abstains(probs, manifest["abstain"])     # probs: the DEQUANTIZED outputs, shape (N,) or (n, N)
    scores(probs, "office_mass")             # one score of the outputs (per row of a batch)

A consumer abstains when the rule's score of the outputs is below ``threshold``. ``score``:

- ``"max"``: the max output probability (method ``max_softmax``; also a rule without ``score``,
  as written before the field existed);
- ``"office_mass"``: the sum of the outputs. With method ``other_output`` the model was trained
  with a hidden "other" class that export cut off, so the office outputs sum to 1 - p(other).

The server (Python) and the phone page (android_demo/web/classifier.js) implement exactly this.
Dequantized outputs are multiples of the output scale (1/256) and thresholds are snapped to that
grid, so sums and comparisons are exact in float64 and both agree bit for bit.
"""

from __future__ import annotations

import numpy as np

SCORES = {
    "max": lambda p: p.max(-1),
    "office_mass": lambda p: p.sum(-1),
}
# How reports name each score ("abstains when the <words> of the outputs is below ...").
SCORE_WORDS = {
    "max": "max",
    "office_mass": "sum (office mass, 1 - p(other))",
}


def scores(probs, name: str = "max") -> np.ndarray:
    """Score ``name`` of one output vector (a scalar) or of a batch (one per row), in float64."""
    return SCORES[name](np.asarray(probs, np.float64))


def abstains(probs, rule: dict):
    """True where the rule's score is below its threshold: "not sure this is an office object"."""
    return scores(probs, rule.get("score", "max")) < rule["threshold"]
