"""Diagnostics aggregation with a fake clock, and DiagnosticArray messages on the real definitions (rosbags)."""

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from seg_ros.ros.diagnostics import ERROR, OK, STAGES, WARN, NodeStats, Throttle, diagnostic_array

TS = get_typestore(Stores.ROS2_KILTED)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_throttle_passes_one_per_period_and_counts_the_rest():
    clock = Clock()
    th = Throttle(5.0, clock)
    assert th.check("bad") == 0
    assert th.check("bad") is None and th.check("bad") is None
    assert th.check("other") == 0  # keys are independent
    clock.t += 5.0
    assert th.check("bad") == 2
    assert th.check("bad") is None


def test_fps_latency_percentiles_and_stage_medians():
    clock = Clock()
    st = NodeStats(window_s=10.0, clock=clock)
    lat = np.arange(1, 101, dtype=float)  # 1..100 ms
    for v in lat:
        st.frame(v, {"infer": 2 * v, "decode": 0.5})
        clock.t += 0.1  # 10 fps
    st.count("received", 100)
    st.count("processed", 100)
    s = st.summary()
    d = s.as_dict()
    assert s.level == OK and "10.0 fps" in s.message
    assert float(d["fps"]) == pytest.approx(10.0, rel=0.01)
    assert float(d["latency p50 ms"]) == pytest.approx(np.percentile(lat, 50), abs=0.05)
    assert float(d["latency p99 ms"]) == pytest.approx(np.percentile(lat, 99), abs=0.05)
    assert float(d["infer p50 ms"]) == pytest.approx(2 * np.percentile(lat, 50), abs=0.01)
    assert d["decode p50 ms"] == "0.50" and d["render p50 ms"] == "n/a"
    assert [k for k, _ in s.values][: 4 + len(STAGES)] == ["fps", "latency p50 ms", "latency p95 ms",
                                                           "latency p99 ms"] + [f"{x} p50 ms" for x in STAGES]


def test_window_expires_old_frames():
    clock = Clock()
    st = NodeStats(window_s=2.0, clock=clock)
    for _ in range(10):
        st.frame(5.0, {})
        clock.t += 0.1
    clock.t += 5.0
    s = st.summary()
    assert s.level == WARN and "no frames segmented in the last 2 s" in s.message
    assert s.as_dict()["fps"] == "0.00" and s.as_dict()["latency p50 ms"] == "n/a"


def test_levels_follow_new_bad_frames_and_errors():
    clock = Clock()
    st = NodeStats(clock=clock)
    st.frame(5.0, {})
    assert st.summary().level == OK
    st.bad_frame("image encoding 'hsv8' is not supported.")
    s = st.summary()
    assert s.level == WARN and "1 bad input frame(s) dropped: image encoding 'hsv8'" in s.message
    assert s.as_dict()["bad frames"] == "1"
    assert st.summary().level == OK  # reported once; the counter stays
    st.error("RuntimeError: boom")
    s = st.summary()
    assert s.level == ERROR and "RuntimeError: boom" in s.message and s.as_dict()["last error"] == "RuntimeError: boom"
    assert st.summary(mark_reported=False).level == OK


def test_drop_ratio_info_and_extra_values():
    st = NodeStats(clock=Clock())
    st.set_count("received", 10)
    st.set_count("dropped", 4)
    st.info = {"model": "m.safetensors", "device": "cpu"}
    d = st.summary(extra={"input topic": "/cam/image"}).as_dict()
    assert d["drop ratio"] == "0.400" and d["model"] == "m.safetensors" and d["input topic"] == "/cam/image"


def test_diagnostic_array_round_trips_on_the_real_definition():
    class Types:
        DiagnosticArray = TS.types["diagnostic_msgs/msg/DiagnosticArray"]
        DiagnosticStatus = TS.types["diagnostic_msgs/msg/DiagnosticStatus"]
        KeyValue = TS.types["diagnostic_msgs/msg/KeyValue"]

    Header = TS.types["std_msgs/msg/Header"]
    Time = TS.types["builtin_interfaces/msg/Time"]
    st = NodeStats(clock=Clock())
    st.frame(12.5, {"infer": 10.0})
    st.bad_frame("image is empty (0x0).")
    msg = diagnostic_array(Types, Header(stamp=Time(sec=3, nanosec=4), frame_id=""),
                           [("seg: segmentation", "cpu", st.summary())])
    data = TS.serialize_cdr(msg, msg.__msgtype__)
    back = TS.deserialize_cdr(data, msg.__msgtype__)
    (status,) = back.status
    assert status.level == Types.DiagnosticStatus.WARN == 1
    assert status.name == "seg: segmentation" and status.hardware_id == "cpu"
    kv = {v.key: v.value for v in status.values}
    assert kv["bad frames"] == "1" and kv["last bad frame"] == "image is empty (0x0)."
    assert back.header.stamp.sec == 3
