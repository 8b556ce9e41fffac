"""bench.server end to end on the tiny bundle, at a tiny size (this checks what it records, not speed)."""

from __future__ import annotations

import json

import pytest

from bench.server import main


@pytest.mark.slow
def test_bench_server_records_ceiling_load_and_abuse(tiny_bundle, sample_photos, tmp_path):
    assert (
        main(
            [
                "--bundle",
                str(tiny_bundle),
                "--photos",
                str(sample_photos[0].parent),
                "--out",
                str(tmp_path),
                "--requests",
                "24",
                "--abuse-requests",
                "120",
                "--ceiling-reps",
                "3",
                "--ceiling-seconds",
                "0.5",
                "--max-seconds",
                "10",
            ]
        )
        == 0
    )
    r = json.loads((tmp_path / "server.json").read_text())
    for name, c in r["ceiling"].items():  # the bound is the best of the trials before and after
        trials = r["ceiling_runs"]["before"][name]["rps_trials"] + r["ceiling_runs"]["after"][name]["rps_trials"]
        assert c["rps"] == max(trials) > 0 and c["cores"] >= 1
    a = r["abuse"]
    assert a["requests"] == 120 and a["max_inflight"] >= 1 and a["rss_before_kb"] > 0
    assert 0.15 < a["bad_share"] < 0.45 and len(a["status_by_kind"]) > 4  # good + several bad kinds
    assert a["5xx_other"] == 0 and a["no_answer"] == 0, a["status_by_kind"]
    md = (tmp_path / "server.md").read_text()
    assert "abuse run, 16 clients, 30 % bad" in md and "avx512_vnni" in md
