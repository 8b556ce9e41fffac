"""bundle.abstain: the rule every consumer applies, and the manifest check of its section."""

import numpy as np
import pytest
from test_manifest import manifest

from bundle.abstain import abstains, scores
from bundle.manifest import BundleError, validate_manifest

# Dequantized uint8 outputs are multiples of 1/256: three office classes, the rest went to "other".
UNSURE = np.array([60, 50, 40]) / 256  # max 0.234, sum 0.586
OFFICE = np.array([200, 30, 10]) / 256  # max 0.781, sum 0.938


def test_max_score_is_the_default_and_office_mass_is_the_sum():
    assert scores(UNSURE) == 60 / 256
    assert scores(UNSURE, "max") == 60 / 256
    assert scores(UNSURE, "office_mass") == 150 / 256
    assert scores(np.stack([UNSURE, OFFICE]), "office_mass").tolist() == [150 / 256, 240 / 256]
    # A rule without "score" (written before the field existed) is read as "max".
    assert abstains(UNSURE, {"threshold": 61 / 256}) and not abstains(UNSURE, {"threshold": 60 / 256})


def test_the_threshold_decides_and_the_score_matters():
    by_max = {"threshold": 0.5, "score": "max"}
    by_mass = {"threshold": 0.5, "score": "office_mass"}
    assert abstains(UNSURE, by_max) and not abstains(UNSURE, by_mass)
    assert not abstains(OFFICE, by_max) and not abstains(OFFICE, by_mass)
    # On the uint8 grid the comparison is exact: a score equal to the threshold answers.
    assert not abstains(UNSURE, {"threshold": 150 / 256, "score": "office_mass"})
    assert abstains(UNSURE, {"threshold": 151 / 256, "score": "office_mass"})


@pytest.mark.parametrize(
    "rule, problem",
    [
        ({"method": "max_softmax"}, "numeric threshold"),
        ({"threshold": "0.3"}, "numeric threshold"),
        ({"threshold": 0.3, "score": "energy"}, "score 'energy' is not one of"),
    ],
)
def test_manifest_refuses_a_rule_consumers_cannot_apply(rule, problem):
    m = {**manifest(), "files": {"model.tflite": {}}, "abstain": rule}
    with pytest.raises(BundleError, match=problem):
        validate_manifest(m)
    validate_manifest({**m, "abstain": {"method": "other_output", "score": "office_mass", "threshold": 0.3}})
