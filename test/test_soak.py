"""Soak of the node's ROS-free core (bounded to about a minute on an idle 2-core machine)."""

import json

import pytest

from seg_ros.tools.reports import write_report
from seg_ros.tools.soak import SoakReport, format_report, run_soak

SOAK_KEYS = ["kind", "frames", "seconds", "submitted", "processed", "dropped", "bad_frames", "errors", "published",
             "param_changes", "params_rejected", "reloads", "rss_mb_at_1000", "rss_mb_end", "rss_growth_pct",
             "rss_samples_mb", "problems", "rss_mb_start", "rss_mb_peak", "ok"]


def _report(problems: list[str]) -> SoakReport:
    return SoakReport(frames=1200, seconds=5.5, submitted=1200, processed=300, dropped=890, bad_frames=10, errors=0,
                      published={"labels": 300, "color": 120}, param_changes=30, params_rejected=5, reloads=5,
                      rss_mb_at_1000=400.0, rss_mb_end=404.0, rss_growth_pct=1.0,
                      rss_samples_mb=[(0, 390.0), (1000, 400.0), (1200, 404.0)], problems=problems,
                      rss_mb_start=390.0, rss_mb_peak=404.0)


def test_soak_json_is_the_report_with_its_verdict(tmp_path):
    for problems in ([], ["1 frames submitted, expected 1200"]):
        r = _report(problems)
        path = write_report(r, tmp_path / "out" / "soak.json")
        d = json.loads(path.read_text())
        assert d == json.loads(json.dumps(r.to_json())) and not list(path.parent.glob(".*"))
        assert list(d) == SOAK_KEYS and d["ok"] is (not problems) and d["problems"] == problems
        assert d["rss_samples_mb"] == [[0, 390.0], [1000, 400.0], [1200, 404.0]]
        assert SoakReport(**{k: v for k, v in d.items() if k != "ok"}).to_json() == d
    text = format_report(_report([]))
    assert "1200 frames in 5.5 s: 300 processed, 890 dropped" in text and "+1.00% since frame 1,000" in text
    assert format_report(_report(["x went wrong"])).endswith("PROBLEMS:\n  x went wrong")


@pytest.mark.slow
def test_soak_every_frame_accounted_headers_kept_memory_flat(random_model_file):
    r = run_soak(2500, model=random_model_file, size=(64, 96), resolutions=("64x96", "32x48"), interval_s=0.004,
                 change_every=40, bad_every=97)
    print(format_report(r))
    assert r.ok, r.problems
    assert r.submitted == 2500 == r.processed + r.dropped + r.bad_frames + r.errors
    assert r.errors == 0 and r.processed >= 1 and r.dropped > 0
    assert r.published["labels"] == r.processed
    assert r.param_changes == 62 and r.params_rejected >= 10 and r.reloads >= 10
    assert r.rss_growth_pct is not None and r.rss_growth_pct < 10.0


@pytest.mark.slow
def test_soak_with_a_new_size_every_frame(random_model_file):
    r = run_soak(300, model=random_model_file, size=(64, 96), resolutions=("64x96", "32x48"), interval_s=0.01,
                 change_every=50, bad_every=0, max_size=(120, 160))
    print(format_report(r))
    assert r.ok, r.problems  # includes: every output has the size of the frame it came from
    assert r.submitted == 300 == r.processed + r.dropped + r.bad_frames + r.errors
    assert r.errors == 0 and r.bad_frames == 0 and r.processed >= 1
    assert 0 < r.rss_mb_start <= r.rss_mb_peak and r.rss_mb_end <= r.rss_mb_peak
    assert f"start {r.rss_mb_start:.1f} MB, peak {r.rss_mb_peak:.1f} MB" in format_report(r)
