"""Soak of the node's ROS-free core (bounded to about a minute on an idle 2-core machine)."""

import pytest

from seg_ros.tools.soak import format_report, run_soak

pytestmark = pytest.mark.slow


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


def test_soak_with_a_new_size_every_frame(random_model_file):
    r = run_soak(300, model=random_model_file, size=(64, 96), resolutions=("64x96", "32x48"), interval_s=0.01,
                 change_every=50, bad_every=0, max_size=(120, 160))
    print(format_report(r))
    assert r.ok, r.problems  # includes: every output has the size of the frame it came from
    assert r.submitted == 300 == r.processed + r.dropped + r.bad_frames + r.errors
    assert r.errors == 0 and r.bad_frames == 0 and r.processed >= 1
    assert 0 < r.rss_mb_start <= r.rss_mb_peak and r.rss_mb_end <= r.rss_mb_peak
    assert f"start {r.rss_mb_start:.1f} MB, peak {r.rss_mb_peak:.1f} MB" in format_report(r)
