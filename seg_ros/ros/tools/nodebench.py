"""``seg-ros bench node``: what the node adds around the pipeline, measured on real message types.

Per frame the node decodes the received sensor_msgs/Image into RGB and builds
the outgoing messages (labels, colour, overlay, confidence, camera_info); the
middleware also deserialises the incoming message and serialises the outgoing
ones. This times each of those with the same functions the node runs, on the
``rosbags`` message classes and, when rclpy is importable, on rclpy's (whose
uint8[] fields are ``array.array``), and compares them with the Segmenter's
own time for the frame (all outputs) on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from seg_ros.core.machine import describe_machine
from seg_ros.io.messages import confidence_image, encode_rgb, image_message, image_to_rgb, uint8_sequence
from seg_ros.pipeline import Segmenter, format_resolution
from seg_ros.ros.camera_info import scale_camera_info
from seg_ros.synthetic import generate_scene


@dataclass
class NodeBenchRow:
    """Median milliseconds per frame; ``overhead_pct`` = (decode + build) / pipeline × 100."""

    messages: str
    """``rosbags`` or ``rclpy``: whose message classes were used."""
    device: str
    resolution: str
    input_encoding: str
    frames: int
    pipeline_ms: float
    deserialize_ms: float
    decode_ms: float
    build_ms: float
    serialize_ms: float
    overhead_ms: float
    overhead_pct: float
    overhead_with_serialization_pct: float


@dataclass
class MessageKit:
    """Message classes and (de)serialisers of one ROS message implementation."""

    name: str
    image: type
    camera_info: Callable[[], Any]
    header: Callable[[], Any]
    serialize: Callable[[Any], bytes]
    deserialize: Callable[[bytes, type], Any]


def rosbags_kit() -> MessageKit:
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    Image = ts.types["sensor_msgs/msg/Image"]
    CameraInfo = ts.types["sensor_msgs/msg/CameraInfo"]
    Roi = ts.types["sensor_msgs/msg/RegionOfInterest"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]

    def header():
        return Header(stamp=Time(sec=1, nanosec=2), frame_id="camera")

    def camera_info():
        return CameraInfo(header=header(), height=720, width=1280, distortion_model="plumb_bob",
                          d=np.zeros(5), k=np.array([900.0, 0, 640, 0, 900, 360, 0, 0, 1]), r=np.eye(3).reshape(9),
                          p=np.array([900.0, 0, 640, 0, 0, 900, 360, 0, 0, 0, 1, 0]), binning_x=0, binning_y=0,
                          roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))

    return MessageKit("rosbags", Image, camera_info, header,
                      lambda m: bytes(ts.serialize_cdr(m, m.__msgtype__)),
                      lambda b, cls: ts.deserialize_cdr(b, cls.__msgtype__))


def rclpy_kit() -> MessageKit | None:
    """rclpy's message classes and (de)serialisers, or None where rclpy is not importable."""
    try:
        from rclpy.serialization import deserialize_message, serialize_message
        from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
        from std_msgs.msg import Header
    except ImportError:
        return None

    def header() -> Header:
        h = Header(frame_id="camera")
        h.stamp.sec, h.stamp.nanosec = 1, 2
        return h

    def camera_info() -> CameraInfo:
        return CameraInfo(header=header(), height=720, width=1280, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[900.0, 0.0, 640.0, 0.0, 900.0, 360.0, 0.0, 0.0, 1.0],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[900.0, 0.0, 640.0, 0.0, 0.0, 900.0, 360.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                          roi=RegionOfInterest())

    return MessageKit("rclpy", Image, camera_info, header, serialize_message, deserialize_message)


def _median_ms(fn: Callable[[], Any], frames: int, warmup: int) -> tuple[float, Any]:
    out = None
    for _ in range(warmup):
        out = fn()
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples) * 1000.0), out


def bench_node(seg: Segmenter, rgb: np.ndarray, kit: MessageKit, frames: int = 20, warmup: int = 3,
               input_encoding: str = "bgr8") -> NodeBenchRow:
    """Time the node's per-frame message work with ``kit`` against ``seg`` on the (H, W, 3) frame ``rgb``."""
    h, w = rgb.shape[:2]
    f = encode_rgb(rgb, input_encoding)
    incoming = kit.image(header=kit.header(), height=f.height, width=f.width, encoding=f.encoding,
                         is_bigendian=f.is_bigendian, step=f.step, data=uint8_sequence(kit.image, f.data))
    wire = kit.serialize(incoming)
    info = kit.camera_info()
    pipeline_ms, result = _median_ms(lambda: seg.segment(rgb), frames, warmup)
    deser_ms, received = _median_ms(lambda: kit.deserialize(wire, kit.image), frames, warmup)
    decode_ms, decoded = _median_ms(lambda: image_to_rgb(received), frames, warmup)
    if not np.array_equal(decoded, rgb):
        raise AssertionError(f"{input_encoding} did not decode back to the frame")

    def build():
        hd = received.header
        return [image_message(kit.image, hd, result.labels), image_message(kit.image, hd, result.color),
                image_message(kit.image, hd, result.overlay),
                image_message(kit.image, hd, confidence_image(result.confidence, "mono8")),
                scale_camera_info(info, h, w, hd)]

    build_ms, outgoing = _median_ms(build, frames, warmup)
    ser_ms, _ = _median_ms(lambda: [kit.serialize(m) for m in outgoing], frames, warmup)
    overhead = decode_ms + build_ms
    return NodeBenchRow(
        messages=kit.name, device=str(seg.device), resolution=format_resolution((h, w)), input_encoding=input_encoding,
        frames=frames, pipeline_ms=pipeline_ms, deserialize_ms=deser_ms, decode_ms=decode_ms, build_ms=build_ms,
        serialize_ms=ser_ms, overhead_ms=overhead, overhead_pct=100.0 * overhead / pipeline_ms,
        overhead_with_serialization_pct=100.0 * (overhead + deser_ms + ser_ms) / pipeline_ms)


def run_node_bench(model: str, resolutions: list[tuple[int, int]], devices: list[str], frames: int = 20,
                   warmup: int = 3, input_encoding: str = "bgr8") -> dict:
    """Node overhead for every device × resolution × message implementation; the JSON-ready report."""
    kits = [k for k in (rosbags_kit(), rclpy_kit()) if k is not None]
    rows = []
    for device in devices:
        for res in resolutions:
            seg = Segmenter(model, resolution=res, keep_aspect=False, device=device)
            rgb = generate_scene(7, res).image
            for kit in kits:
                rows.append(asdict(bench_node(seg, rgb, kit, frames, warmup, input_encoding)))
    return {"kind": "node_overhead", "machine": describe_machine(), "date": time.strftime("%Y-%m-%d"), "model": model,
            "torch": torch.__version__, "rows": rows}


def format_node_table(report: dict) -> str:
    head = ("| messages | device | resolution | input | pipeline ms | deserialize | decode | build outputs "
            "| serialize | overhead ms (decode+build) | overhead % | incl. (de)serialization % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["rows"]:
        lines.append(
            f"| {r['messages']} | {r['device']} | {r['resolution']} | {r['input_encoding']} | {r['pipeline_ms']:.1f} "
            f"| {r['deserialize_ms']:.2f} | {r['decode_ms']:.2f} | {r['build_ms']:.2f} | {r['serialize_ms']:.2f} "
            f"| {r['overhead_ms']:.2f} | {r['overhead_pct']:.1f}% | {r['overhead_with_serialization_pct']:.1f}% |")
    return "\n".join(lines)
