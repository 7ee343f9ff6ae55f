"""The flood benchmark: its pure parts, one short real flood of the node, and the shipped Fast DDS profile."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from seg_ros.ros.dds import PROFILE, default_profile_env, profile_env, use_default_profile
from seg_ros.ros.tools.flood import (
    FloodResult,
    RssTrace,
    accounting_problem,
    markdown_table,
    parse_status_kb,
    read_status_kb,
    size_schedule,
)

STATUS = """Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1234567 kB
VmRSS:\t  204800 kB
RssAnon:\t  150000 kB
RssFile:\t   53776 kB
RssShmem:\t    1024 kB
Threads:\t17
"""


def test_size_schedule_changes_every_frame_within_bounds():
    sizes = size_schedule(2000, (480, 640), (8, 16), seed=3)
    assert len(sizes) == 2000
    assert all(8 <= h <= 480 and 16 <= w <= 640 for h, w in sizes)
    assert all(a != b for a, b in zip(sizes, sizes[1:]))
    assert len(set(sizes)) > 1500  # sizes really vary, not a short cycle
    assert max(h for h, _ in sizes) > 450 and max(w for _, w in sizes) > 600
    assert sizes == size_schedule(2000, (480, 640), (8, 16), seed=3)
    assert sizes != size_schedule(2000, (480, 640), (8, 16), seed=4)
    assert size_schedule(3, (5, 5), (5, 5)) == [(5, 5)] * 3


def test_status_parsing_and_live_process():
    assert parse_status_kb(STATUS) == {"VmRSS": 204800, "RssAnon": 150000, "RssShmem": 1024}
    with pytest.raises(ValueError, match="VmRSS"):
        parse_status_kb("Name:\tkthreadd\nState:\tS (sleeping)\n")
    mine = read_status_kb(os.getpid())
    assert mine is not None and mine["VmRSS"] > 10_000 and mine["RssAnon"] <= mine["VmRSS"]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert read_status_kb(gone.pid) is None


def test_rss_trace_start_peak_end():
    t = RssTrace()
    for i, kb in enumerate((100_000, 400_000, 250_000)):
        t.add(i * 0.1, {"VmRSS": kb, "RssAnon": kb // 2})
    assert (t.start_mb(), t.peak_mb(), t.end_mb()) == pytest.approx((97.66, 390.63, 244.14), abs=0.01)
    assert t.end_mb("RssAnon") == pytest.approx(122.07, abs=0.01)
    assert t.end_mb("RssShmem") == 0.0


def test_accounting_identity():
    assert accounting_problem(received=100, processed=20, dropped=75, bad=4, errors=1) is None
    assert accounting_problem(0, 0, 0, 0, 0) is None
    msg = accounting_problem(received=100, processed=20, dropped=75, bad=4, errors=0)
    assert msg == "frames lost: received 100 != processed 20 + dropped 75 + bad 4 + errors 0"
    assert accounting_problem(1, 2, -1, 0, 0) == "a frame counter is negative"


def _result(**kw) -> FloodResult:
    base = dict(target="node", profile="defaults", env={}, publishers=2, seconds=10.0, rate_hz_target=2000.0,
                max_size=(480, 640), sent=20000, rate_hz_achieved=1999.6, received=12345, processed=150,
                dropped=12190, bad=5, errors=0, rss_mb_start=300.4, rss_mb_peak=2237.0, rss_mb_end=2236.2,
                anon_mb_end=2100.0, shmem_mb_end=2.0)
    base.update(kw)
    return FloodResult(**base)


def test_markdown_table_rows():
    table = markdown_table([_result(), _result(target="plain", profile="fastdds_profile.xml", processed=None,
                                               dropped=None, bad=None, errors=None, rss_mb_peak=75.2)])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == lines[3].count("|")
    assert "| node | defaults | 20,000 (2,000) | 12,345 | 150 | 12,190 | 5 | 300 / 2,237 / 2,236 |" in lines[2]
    assert "| plain | fastdds_profile.xml | 20,000 (2,000) | 12,345 | - | - | - | 300 / 75 / 2,236 |" in lines[3]


def test_profile_env_picks_the_variable_of_the_fast_dds_generation():
    assert profile_env(PROFILE, "kilted") == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert profile_env(PROFILE, "") == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    for distro in ("humble", "Jazzy"):
        assert profile_env(PROFILE, distro) == {"FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert profile_env(None) == {}


def test_default_profile_env_respects_the_users_choice():
    fast = {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert default_profile_env(PROFILE, {}) == fast
    assert default_profile_env(PROFILE, {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}) == fast
    assert default_profile_env(PROFILE, {"ROS_DISTRO": "jazzy"}) == {
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert default_profile_env(PROFILE, {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}
    assert default_profile_env(PROFILE, {"FASTRTPS_DEFAULT_PROFILES_FILE": "/robot/dds.xml"}) == {}
    assert default_profile_env(PROFILE, {"FASTDDS_DEFAULT_PROFILES_FILE": "/robot/dds.xml"}) == {}


def test_node_environment_gets_the_shipped_profile_once():
    env = {"ROS_DISTRO": "humble"}
    assert use_default_profile(env) == {"FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(PROFILE) and PROFILE.is_file()
    assert use_default_profile(env) == {}


# -- real processes ----------------------------------------------------------------------------------------------

needs_rclpy = pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="rclpy is not installed")


@pytest.mark.ros
@pytest.mark.slow
@needs_rclpy
def test_node_under_a_short_flood_accounts_for_every_frame(tmp_path):
    from seg_ros.ros.tools.flood import run_flood

    r = run_flood("node", publishers=2, rate_hz=100.0, seconds=3.0, max_size=(48, 64), min_size=(8, 8),
                  settle_s=1.0, node_params={"resolution": "32x48"}, log_dir=tmp_path)
    assert r.problems == [], (r.problems, (tmp_path / "node.stderr").read_text())
    assert 200 <= r.sent <= 320
    assert 0 < r.received <= r.sent
    assert r.received == r.processed + r.dropped + r.bad + r.errors
    assert r.processed >= 1 and r.bad == 0 and r.errors == 0
    assert 0 < r.rss_mb_start <= r.rss_mb_peak and 0 < r.rss_mb_end <= r.rss_mb_peak
    assert r.anon_mb_end > 0 and len(r.rss_samples) >= 5


@pytest.mark.ros
@needs_rclpy
def test_shipped_profile_is_accepted_by_fast_dds(tmp_path):
    """The profile parses (Fast DDS logs XMLPARSER errors and falls back to its defaults otherwise) and a
    subscriber that loads it still receives frames."""
    from seg_ros.ros.tools.flood import run_flood

    limits = ET.parse(PROFILE).getroot().find(".//{*}resourceLimitsQos")
    assert int(limits.find("{*}max_samples").text) >= int(limits.find("{*}max_samples_per_instance").text) >= 10
    r = run_flood("plain", publishers=1, rate_hz=50.0, seconds=2.0, max_size=(32, 32), settle_s=0.5,
                  profile=PROFILE, log_dir=tmp_path)
    stderr = (tmp_path / "plain.stderr").read_text()
    assert r.problems == [] and r.profile == PROFILE.name
    assert 0 < r.received <= r.sent
    assert "XMLPARSER" not in stderr and "Error" not in stderr, stderr
    # The same check catches a profile Fast DDS rejects.
    broken = tmp_path / "broken.xml"
    broken.write_text(PROFILE.read_text().replace("<max_samples>", "<max_samples>x", 1))
    env = {**os.environ, **profile_env(broken), "ROS_DOMAIN_ID": "0", "ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}
    p = subprocess.Popen([sys.executable, "-m", "seg_ros.ros.tools.flood", "--role", "subscribe"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert "XMLPARSER" in err and str(broken) in err
