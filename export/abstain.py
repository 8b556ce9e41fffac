"""Step 4b: the "not an office object" rule (issue 8): a calibrated threshold on a score of the outputs.

Consumers abstain when the rule's score of the dequantized outputs is below the threshold
(bundle.abstain: score "max" or "office_mass"). Methods are a small registry (``METHODS``),
chosen by ``--abstain-method`` (default: what the run supports). Two today:

- ``max_softmax`` (method a): a model trained on the office classes only; score = its max softmax
  probability.
- ``other_output`` (method b): a model trained with a hidden "other" output on the train-side
  non-office classes (``--other-class``); export cuts "other" off the graph (export.outputs), so
  the shipped office outputs sum to 1 - p(other). Score = whichever of "max" and "office_mass"
  (that sum) separates office from non-office val photos better (AUROC); both are recorded.

    from export.abstain import abstain_agreement, calibrate, choose_method, evaluate
    rule = calibrate(float_office_val, labels, float_others_val, output_scale, coverage=0.9,
                     method=choose_method("auto", other_output=True))
    rule["threshold"], rule["score"]   # a consumer abstains when score(dequantized outputs) < threshold
    figures = evaluate(int8_office_test, office_labels, int8_others_test, rule["threshold"], rule["score"])
    abstain_agreement(float_probs, int8_probs, rule["threshold"], rule["score"])  # the parity gate's figure

Calibration uses the FLOAT model's probabilities on the val split: office val photos, and
non-office val photos of the train-side others classes (``Dataset.others_items("val")``). The
threshold is the score that keeps ``coverage`` of the office val photos answered.
Evaluation uses only the others classes kept for evaluation (split "test"), which no training or
calibration photo comes from, against the office test split, on the int8 model that consumers run.

The threshold is expressed on the int8 model's output scale: consumers compute the score from the
DEQUANTIZED uint8 outputs, multiples of the output scale (1/256), and so is their sum. So the float
threshold is snapped down to that grid (the largest representable value not above it): every
office val photo the float model answers is still answered by the float rule, and an int8 score (the
float one rounded to the grid, give or take a few steps) at or above the float threshold is at or
above the snapped one. The int8 and float rules then disagree only on photos whose int8 score moved
by quantization steps across it, which the parity gate counts.

Temperature scaling (method a only; T fitted by NLL on office val) is measured but not applied:
the consumers threshold the model's own softmax, so applying T would mean changing the model graph,
and a single T only rescales the logits, which for a coverage-calibrated threshold changes a
decision only where it reorders the photos' max probabilities. ``temperature`` reports the fitted T
and the val AUROC with and without it, so the decision to leave it out is measured each export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bundle.abstain import scores


@dataclass(frozen=True)
class Method:
    """One way to decide "not an office object": what it needs, its scores, how it is worded.

    Adding a method is one entry here; adding a score is one entry in ``bundle.abstain.SCORES``
    (and its JS mirror in android_demo/web/classifier.js) named in a method's ``scores``.
    """

    name: str
    summary: str  # the manifest's ``rule`` text and the report's wording
    scores: tuple[str, ...]  # candidate scores; calibration keeps the best val AUROC
    needs_other_output: bool  # the run must have trained the hidden "other" output
    fits_temperature: bool  # measure (not apply) temperature scaling of the softmax


METHODS = {
    m.name: m
    for m in (
        # The office mass of a model trained on the office classes only is always ~1: max only.
        Method(
            "max_softmax",
            "abstained = max(dequantized outputs) < threshold",
            scores=("max",),
            needs_other_output=False,
            fits_temperature=True,
        ),
        Method(
            "other_output",
            "abstained = score(dequantized outputs) < threshold, score = max or office_mass "
            "(their sum); the outputs are the office classes of a softmax with a hidden 'other' "
            "class, so they sum to 1 - p(other)",
            scores=("max", "office_mass"),
            needs_other_output=True,
            fits_temperature=False,
        ),
    )
}


def choose_method(requested: str, other_output: bool) -> Method:
    """``--abstain-method`` resolved for a run: ``auto`` = what the run supports best."""
    if requested == "auto":
        return METHODS["other_output" if other_output else "max_softmax"]
    if requested not in METHODS:
        raise ValueError(f"unknown abstain method {requested!r} (known: {', '.join(METHODS)})")
    method = METHODS[requested]
    if method.needs_other_output and not other_output:
        raise ValueError(
            f"--abstain-method {requested} needs a run trained with the hidden 'other' output "
            f"(python -m training.train --other-class on)"
        )
    return method


def coverage_threshold(scores: np.ndarray, coverage: float) -> float:
    """The largest threshold t with at least ``coverage`` of ``scores`` >= t (answered)."""
    ranked = np.sort(np.asarray(scores, np.float64))[::-1]
    keep = max(1, int(np.ceil(coverage * len(ranked) - 1e-9)))
    return float(ranked[keep - 1])


def snap(threshold: float, output_scale: float) -> float:
    """The largest uint8 output grid value <= a float threshold (zero point 0: probabilities >= 0)."""
    return float(np.floor(threshold / output_scale + 1e-6) * output_scale)


def answered(probs: np.ndarray, threshold: float, score: str = "max") -> np.ndarray:
    """The consumers' rule: answer when the score reaches the threshold."""
    return scores(probs, score) >= threshold


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U)."""
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # uint8 outputs tie often: every tied score gets the average of its ranks.
    uniq, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the NLL of softmax(log(p) / T) (a golden-section search over log T)."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1))

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z -= z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(labels)), labels].mean())

    lo, hi, golden = np.log(0.05), np.log(20.0), (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return float(np.exp((lo + hi) / 2))


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1)) / temperature
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def calibrate(
    office_val: np.ndarray,
    office_val_labels: np.ndarray,
    others_val: np.ndarray,
    output_scale: float,
    coverage: float,
    method: Method = METHODS["max_softmax"],
) -> dict:
    """The manifest's ``abstain`` section (less ``figures``), from FLOAT val probabilities
    (the shipped outputs: for ``other_output``, the office columns only)."""
    by_score = {name: _r(auroc(scores(office_val, name), scores(others_val, name))) for name in method.scores}
    score = max(by_score, key=by_score.get)
    float_threshold = coverage_threshold(scores(office_val, score), coverage)
    threshold = snap(float_threshold, output_scale)
    rule = {
        "method": method.name,
        "score": score,
        "threshold": round(threshold, 8),
        "target_coverage": coverage,
        "rule": method.summary,
        "calibrated_on": {
            "office_val": int(len(office_val)),
            "others_val": int(len(others_val)),
            "float_threshold": round(float_threshold, 6),
            "float_office_coverage": _r(answered(office_val, threshold, score).mean()),
            "float_others_answered": _r(answered(others_val, threshold, score).mean()),
            "float_auroc": by_score[score],
            "float_auroc_by_score": by_score,
        },
    }
    if method.fits_temperature:
        t = fit_temperature(office_val, office_val_labels)
        rule["temperature"] = {
            "fitted": round(t, 4),
            "applied": False,
            "val_auroc_t1": by_score["max"],
            "val_auroc_fitted": _r(auroc(scores(tempered(office_val, t)), scores(tempered(others_val, t)))),
        }
    return rule


def evaluate(
    office: np.ndarray, office_labels: np.ndarray, others: np.ndarray, threshold: float, score: str = "max"
) -> dict:
    """Figures on office test vs the evaluation-only others classes (probabilities of one model)."""
    office_s, others_s = scores(office, score), scores(others, score)
    correct = office.argmax(1) == office_labels
    kept = office_s >= threshold
    at = {}
    for c in (0.90, 0.95):
        t = coverage_threshold(office_s, c)
        at[f"{round(100 * c)}"] = {
            "threshold": round(t, 6),
            "office_coverage": _r((office_s >= t).mean()),
            "others_answered": _r((others_s >= t).mean()),
        }
    return {
        "office_images": int(len(office)),
        "others_images": int(len(others)),
        "auroc": _r(auroc(office_s, others_s)),
        "at_office_coverage": at,
        "office_coverage": _r(kept.mean()),
        "others_answered": _r((others_s >= threshold).mean()),
        "top1_overall": _r(correct.mean()),
        "top1_answered": _r(correct[kept].mean()) if kept.any() else None,
    }


def abstain_agreement(float_probs: np.ndarray, int8_probs: np.ndarray, threshold: float, score: str = "max") -> float:
    """Share of images where float and int8 take the same abstain-vs-answer decision."""
    return float((answered(float_probs, threshold, score) == answered(int8_probs, threshold, score)).mean())


def _r(x, digits: int = 4) -> float:
    return round(float(x), digits)
