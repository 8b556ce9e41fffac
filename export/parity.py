"""Step 3: the parity gate: does the int8 LiteRT model decide like the float Keras model?

    from export.parity import measure, gate
    figures = measure(keras_probs, float_tflite_probs, int8_probs, labels, class_names)
    failures = gate(figures, GateConfig())     # [] = publish; else the reasons, one per line

With an abstain rule (export.abstain), the pipeline adds ``abstain_agreement`` (float vs int8
take the same abstain-vs-answer decision, over office test + non-office test images) and
``abstain_images`` to the figures, and the gate holds it to ``min_abstain_agreement``.

All probabilities are float32 (n, N) over the same images (the whole test split, reference
preprocessing). Accuracies are fractions in [0, 1]; the accuracy drop is reported in points.
"""

from __future__ import annotations

import numpy as np

from export.config import GateConfig


def measure(
    keras_probs: np.ndarray, float_probs: np.ndarray, int8_probs: np.ndarray, labels: np.ndarray, class_names: list[str]
) -> dict:
    k_top, i_top = keras_probs.argmax(1), int8_probs.argmax(1)
    diff = np.abs(int8_probs - keras_probs)
    # uint8 probabilities step by 1/256: an unsure model often ties its top classes, and argmax
    # then takes the lowest index. Such a miss is output resolution, not a broken quantization.
    int8_max = int8_probs.max(1)
    tied = (int8_probs == int8_max[:, None]).sum(1) > 1
    float_top_among_int8_max = int8_probs[np.arange(len(k_top)), k_top] == int8_max
    disagree = k_top != i_top
    per_class = []
    for index, name in enumerate(class_names):
        mask = labels == index
        n = int(mask.sum())
        fa = float((k_top[mask] == index).mean()) if n else None
        ia = float((i_top[mask] == index).mean()) if n else None
        per_class.append(
            {
                "index": index,
                "label": name,
                "images": n,
                "float_accuracy": _round(fa),
                "int8_accuracy": _round(ia),
                "change_points": _round(None if n == 0 else 100 * (ia - fa), 2),
                "agreement": _round(float((k_top[mask] == i_top[mask]).mean()) if n else None),
            }
        )
    float_acc = float((k_top == labels).mean())
    int8_acc = float((i_top == labels).mean())
    return {
        "images": int(len(labels)),
        "float_tflite_max_abs_diff": float(np.abs(float_probs - keras_probs).max()),
        "float_tflite_agreement": _round(float((float_probs.argmax(1) == k_top).mean())),
        "agreement": _round(float((k_top == i_top).mean())),
        "agreement_within_ties": _round(float(((~disagree) | float_top_among_int8_max).mean())),
        "disagreements": int(disagree.sum()),
        "disagreements_tied": int((disagree & tied & float_top_among_int8_max).sum()),
        "float_accuracy": _round(float_acc),
        "int8_accuracy": _round(int8_acc),
        "accuracy_drop_points": _round(100 * (float_acc - int8_acc), 2),
        "mean_abs_prob_diff": _round(float(diff.mean()), 6),
        "max_abs_prob_diff": _round(float(diff.max()), 6),
        "per_class": per_class,
    }


def gate(figures: dict, cfg: GateConfig) -> list[str]:
    """Reasons the int8 model may not be published (empty list: it may)."""
    failures = []
    if figures["float_tflite_max_abs_diff"] > cfg.max_float_diff:
        failures.append(
            f"float TFLite differs from Keras by {figures['float_tflite_max_abs_diff']:.2e} "
            f"(limit {cfg.max_float_diff:.0e}): the conversion itself is wrong"
        )
    if figures["agreement"] < cfg.min_agreement:
        failures.append(
            f"int8 top-1 agrees with float on {100 * figures['agreement']:.2f}% of "
            f"{figures['images']} test images (need >= {100 * cfg.min_agreement:.2f}%); "
            f"{figures['disagreements_tied']} of the {figures['disagreements']} misses are "
            f"ties of the uint8 output that include the float top-1 (an unsure model, "
            f"not a broken quantization, when that is most of them)"
        )
    if figures["accuracy_drop_points"] > cfg.max_accuracy_drop:
        failures.append(
            f"int8 top-1 accuracy {100 * figures['int8_accuracy']:.1f}% is "
            f"{figures['accuracy_drop_points']:.1f} points below float "
            f"{100 * figures['float_accuracy']:.1f}% (limit {cfg.max_accuracy_drop} points)"
        )
    if figures.get("abstain_agreement") is not None and figures["abstain_agreement"] < cfg.min_abstain_agreement:
        failures.append(
            f"int8 and float agree on abstain-vs-answer for {100 * figures['abstain_agreement']:.2f}% "
            f"of {figures['abstain_images']} office + non-office test images (need >= "
            f"{100 * cfg.min_abstain_agreement:.2f}%): the abstain threshold sits where the "
            f"int8 output moves"
        )
    return failures


def drifted_classes(figures: dict, cfg: GateConfig) -> list[dict]:
    """Classes whose int8 decisions moved most: accuracy lost beyond the limit, or low agreement."""
    rows = [
        c
        for c in figures["per_class"]
        if c["images"] and (c["change_points"] < -cfg.max_accuracy_drop or c["agreement"] < cfg.min_agreement)
    ]
    return sorted(rows, key=lambda c: (c["agreement"], c["change_points"]))


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)
