"""ROS 2 bags (rosbag2, sqlite3 or MCAP storage) without a ROS install, through ``rosbags``.

Reading: :class:`BagReader` opens a bag folder (``metadata.yaml`` + storage
files) or a bare ``.db3`` / ``.mcap`` file and yields messages in log-time
order — every message, no wall-clock pacing. Camera images come out as
:class:`ImageMessage` (header stamp, frame id, the deserialized
sensor_msgs/Image or CompressedImage) and decode with the same functions the
node uses (:mod:`seg_ros.io.messages`); camera_info as :class:`CameraIntrinsics`.

Writing: :class:`BagWriter` writes rosbag2 metadata version 8 (plays on
Humble and Iron) or 9 (Jazzy and later), chosen by ``distro``, in sqlite3 or
MCAP storage, with the message definitions of that distribution embedded.
It writes into a hidden folder beside the destination and moves the finished
bag into place only on success, so a failed run never leaves a half-written
bag behind.

Times are integer nanoseconds everywhere: ``log_time_ns`` is the time the
bag recorded the message at (what ``ros2 bag play --clock`` publishes as
/clock), ``stamp_ns`` the message's ``header.stamp``.

Datasets as bags: :func:`write_dataset_bag` writes one frame source as one camera's image, ground-truth and
camera_info topics; :func:`write_multi_camera_bag` writes several sources as several cameras (``/<name>/...``
topics, shared stamps), recorded in metadata.yaml so that :func:`recorded_cameras` finds them again.

Every failure is a :class:`BagError` subclass with one sentence naming the
bag and the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from seg_ros.core.errors import InputError
from seg_ros.core.limits import DEFAULT_MAX_PIXELS
from seg_ros.core.names import CAMERA_NAME
from seg_ros.core.paths import check_creatable, read_text_file, require_file_or_dir, require_text_file
from seg_ros.core.staging import raise_if_interrupted
from seg_ros.io.datasets import FrameSource, sequence_of
from seg_ros.io.messages import MessageError, array_to_image_fields, compressed_to_rgb, image_to_array, image_to_rgb

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
IMAGE_TYPES: tuple[str, ...] = (IMAGE, COMPRESSED_IMAGE)

STORAGES: tuple[str, ...] = ("sqlite3", "mcap")
"""rosbag2 storage plugins this module reads and writes."""

DISTRO_VERSIONS: dict[str, int] = {"humble": 8, "iron": 8, "jazzy": 9, "kilted": 9, "rolling": 9}
"""ROS 2 distribution → rosbag2 metadata version written for it (Humble reads 8; Jazzy and later 9)."""

_DISTRO_STORES = {"humble": Stores.ROS2_HUMBLE, "iron": Stores.ROS2_IRON, "jazzy": Stores.ROS2_JAZZY,
                  "kilted": getattr(Stores, "ROS2_KILTED", Stores.LATEST), "rolling": Stores.LATEST}

DEFAULT_QOS = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE, QosTime(0, 0),
                  QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
"""Offered QoS recorded for written topics: what a default rclcpp/rclpy publisher offers (reliable, volatile,
keep last 10). ``ros2 bag play`` republishes with it, and best-effort subscribers (the node's default) accept it."""

_READ_STORE = get_typestore(Stores.LATEST)  # Image, CompressedImage and CameraInfo are identical in every ROS 2 distro


# -- errors --------------------------------------------------------------------------------------------------------

class BagError(InputError):
    """A bag cannot be read or written."""


class BagNotFoundError(BagError):
    """The path is not a bag: missing, or neither a bag folder nor a .db3 / .mcap file."""


class BagCorruptError(BagError):
    """The bag's metadata, storage file or a message in it is truncated or corrupt."""


class BagTopicError(BagError):
    """A topic is missing from the bag or has the wrong message type."""


class EmptyBagError(BagError):
    """The bag, or the topic asked for, holds no messages."""


class BagWriteError(BagError):
    """A bag cannot be written (destination exists, bad option, unwritable folder)."""


# -- time ----------------------------------------------------------------------------------------------------------

def stamp_to_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time (``sec``, ``nanosec``) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_sec_nanosec(ns: int) -> tuple[int, int]:
    """Integer nanoseconds → (sec, nanosec) of a builtin_interfaces/Time; ``ns`` must be ≥ 0."""
    if ns < 0:
        raise ValueError(f"a ROS time must not be negative, not {ns} ns.")
    return int(ns // 1_000_000_000), int(ns % 1_000_000_000)


# -- what a bag holds ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: ``count`` messages of type ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""

    name: str
    msgtype: str
    count: int

    def describe(self) -> str:
        return f"{self.name} ({self.msgtype.replace('/msg/', '/')}, {self.count} messages)"


@dataclass(frozen=True)
class BagInfo:
    """A bag's metadata. Times in nanoseconds; ``version`` is None for a bare storage file without metadata.yaml."""

    path: Path
    storage: str
    version: int | None
    message_count: int
    start_ns: int | None
    end_ns: int | None
    topics: tuple[TopicInfo, ...]
    custom: dict[str, str] = field(default_factory=dict)

    def topic(self, name: str) -> TopicInfo | None:
        return next((t for t in self.topics if t.name == name), None)

    def image_topics(self) -> list[TopicInfo]:
        """Topics of sensor_msgs/Image or CompressedImage, by name."""
        return sorted((t for t in self.topics if t.msgtype in IMAGE_TYPES), key=lambda t: t.name)

    def describe_image_topics(self) -> str:
        topics = self.image_topics()
        return ", ".join(t.describe() for t in topics) if topics else "none"

    @property
    def duration_s(self) -> float:
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class BagMessage:
    """One serialized message as stored: CDR bytes, its topic, type and log time (ns)."""

    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes | memoryview


@dataclass
class ImageMessage:
    """A sensor_msgs/Image or CompressedImage read from a bag.

    ``index`` is its 0-based position on its topic in log-time order; ``stamp_ns`` its header stamp;
    ``msg`` the deserialized message (``data`` is a uint8 numpy view of the stored bytes, no copy).
    """

    topic: str
    msgtype: str
    index: int
    log_time_ns: int
    stamp_ns: int
    frame_id: str
    msg: Any
    raw: bytes | memoryview

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE

    @property
    def encoding(self) -> str:
        """The Image ``encoding`` (``rgb8``) or the CompressedImage ``format`` (``rgb8; jpeg compressed bgr8``)."""
        return str(self.msg.format if self.compressed else self.msg.encoding)

    def describe(self) -> str:
        return f"frame {self.index} of {self.topic} (stamp {self.stamp_ns / 1e9:.9f} s)"

    def to_rgb(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Decode to a writable (H, W, 3) uint8 RGB array with the node's decoders; MessageError names the frame.

        A frame that declares more than ``max_pixels`` pixels is refused before it is decoded. An rgb8 image
        decodes to a view of the stored bytes, which are read-only: it is copied then (about
        0.1 ms at 360×640), so callers may draw on the result and torch can wrap it without a warning.
        """
        try:
            rgb = (compressed_to_rgb(self.msg, max_pixels) if self.compressed
                   else image_to_rgb(self.msg, max_pixels))
        except MessageError as e:
            raise MessageError(f"{self.describe()}: {e}") from e
        return rgb if rgb.flags.writeable else rgb.copy()

    def to_labels(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Decode a mono8 label image to (H, W) uint8 class ids (at most ``max_pixels``); MessageError otherwise."""
        if self.compressed:
            raise MessageError(f"{self.describe()} is a CompressedImage; ground-truth labels must be a lossless "
                               "sensor_msgs/Image with encoding mono8.")
        if self.encoding not in ("mono8", "8UC1"):
            raise MessageError(f"{self.describe()} has encoding {self.encoding!r}; ground-truth labels must be "
                               "mono8 class ids.")
        try:
            return image_to_array(self.msg, max_pixels)
        except MessageError as e:
            raise MessageError(f"{self.describe()}: {e}") from e


@dataclass(frozen=True)
class CameraIntrinsics:
    """The calibration fields of a sensor_msgs/CameraInfo, in pixels.

    ``k``: 3×3 intrinsic matrix row-major (fx 0 cx / 0 fy cy / 0 0 1); all zeros = uncalibrated.
    ``r``: 3×3 rectification rotation; ``p``: 3×4 projection; ``d``: distortion coefficients of
    ``distortion_model``.
    """

    height: int
    width: int
    k: tuple[float, ...] = (0.0,) * 9
    d: tuple[float, ...] = ()
    r: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    p: tuple[float, ...] = (0.0,) * 12
    distortion_model: str = "plumb_bob"
    stamp_ns: int = 0
    frame_id: str = ""

    @classmethod
    def pinhole(cls, height: int, width: int, fx: float, fy: float, cx: float, cy: float,
                **kw: Any) -> CameraIntrinsics:
        """An undistorted pinhole camera: focal lengths and principal point in pixels."""
        return cls(height=height, width=width, k=(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0),
                   d=(0.0,) * 5, p=(fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0), **kw)

    @property
    def calibrated(self) -> bool:
        return self.k[0] != 0.0

    @classmethod
    def from_msg(cls, msg: Any) -> CameraIntrinsics:
        return cls(height=int(msg.height), width=int(msg.width), k=tuple(float(v) for v in msg.k),
                   d=tuple(float(v) for v in msg.d), r=tuple(float(v) for v in msg.r),
                   p=tuple(float(v) for v in msg.p), distortion_model=str(msg.distortion_model),
                   stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=str(msg.header.frame_id))


# -- reading -------------------------------------------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__).rstrip(".")


class BagReader:
    """Read a ROS 2 bag: a folder with metadata.yaml (sqlite3 or MCAP storage) or a bare .db3 / .mcap file.

    Use as a context manager. Raises BagNotFoundError / BagCorruptError on open.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = self.check_path(path)
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as e:  # rosbags, apsw and the YAML parser raise many kinds
            raise BagCorruptError(f"bag {self.path} cannot be opened, it is truncated or corrupt "
                                  f"({_first_line(e)}).") from e
        self._open = True
        self._conns = {c.topic: c for c in self._reader.connections}
        self.info = self._read_info()

    @staticmethod
    def check_path(path: str | os.PathLike) -> Path:
        """``path`` as a Path; BagNotFoundError unless it is a bag folder or a .db3 / .mcap regular file.

        Nothing is opened: a FIFO or a device is refused by its file type, never read.
        """
        p = Path(path)
        if not os.path.lexists(p):
            raise BagNotFoundError(f"bag {p} does not exist.")
        try:
            require_file_or_dir(p, "bag")
        except InputError as e:
            raise BagNotFoundError(str(e)) from None
        if p.is_dir():
            if not (p / "metadata.yaml").is_file():
                raise BagNotFoundError(f"{p} is not a ROS 2 bag: the folder has no metadata.yaml.")
            try:  # by its size too: rosbags parses it whole when the bag opens
                require_text_file(p / "metadata.yaml", "bag metadata")
            except InputError as e:
                raise BagCorruptError(str(e)) from None
        if p.is_file() and p.suffix not in (".db3", ".mcap"):
            raise BagNotFoundError(f"{p} is not a ROS 2 bag: give a bag folder or a .db3 / .mcap file.")
        return p

    def _read_info(self) -> BagInfo:
        version, storage, custom = None, ("mcap" if self.path.suffix == ".mcap" else "sqlite3"), {}
        if self.path.is_dir():
            try:
                meta = yaml.safe_load(read_text_file(self.path / "metadata.yaml", "bag metadata"))
                meta = meta["rosbag2_bagfile_information"]
                version = int(meta["version"])
                storage = str(meta["storage_identifier"])
                custom = {str(k): str(v) for k, v in (meta.get("custom_data") or {}).items()}
            except Exception as e:
                self.close()
                raise BagCorruptError(f"bag {self.path} has an unreadable metadata.yaml ({_first_line(e)}).") from e
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for c in self._reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
            types[c.topic] = c.msgtype
        topics = tuple(TopicInfo(n, types[n], counts[n]) for n in sorted(counts))
        n = self._reader.message_count
        return BagInfo(path=self.path, storage=storage, version=version, message_count=n,
                       start_ns=self._reader.start_time if n else None, end_ns=self._reader.end_time if n else None,
                       topics=topics, custom=custom)

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._reader.close()
            except Exception:
                pass

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require_topic(self, name: str, types: Sequence[str] = IMAGE_TYPES, role: str = "image") -> TopicInfo:
        """The topic ``name``, checked to exist, to be of one of ``types`` and to hold messages.

        Raises EmptyBagError for a bag without messages or an empty topic, BagTopicError otherwise;
        the message lists the bag's image topics.
        """
        if self.info.message_count == 0:
            raise EmptyBagError(f"bag {self.path} is empty: it holds no messages.")
        t = self.info.topic(name)
        if t is None:
            raise BagTopicError(f"{role} topic {name} is not in bag {self.path}; its image topics are: "
                                f"{self.info.describe_image_topics()}.")
        if t.msgtype not in types:
            want = " or ".join(x.replace("/msg/", "/") for x in types)
            raise BagTopicError(f"{role} topic {name} in bag {self.path} carries {t.msgtype}, not {want}; "
                                f"its image topics are: {self.info.describe_image_topics()}.")
        if t.count == 0:
            raise EmptyBagError(f"{role} topic {name} in bag {self.path} holds no messages.")
        return t

    def messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        """Every message on ``topics`` in log-time order, serialized. Raises BagCorruptError on a bad record."""
        conns = [self._conns[t] for t in topics if t in self._conns]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                conn, t, raw = next(it)
            except StopIteration:
                return
            except Exception as e:
                raise BagCorruptError(f"bag {self.path} is truncated or corrupt; reading stopped "
                                      f"({_first_line(e)}).") from e
            yield BagMessage(conn.topic, conn.msgtype, int(t), raw)

    def deserialize(self, m: BagMessage) -> Any:
        """The message object of a BagMessage (rosbags class of the ROS 2 type); BagCorruptError if it is garbled."""
        try:
            return _READ_STORE.deserialize_cdr(m.raw, m.msgtype)
        except Exception as e:
            raise BagCorruptError(f"a {m.msgtype} message on {m.topic} at {m.log_time_ns / 1e9:.9f} s in bag "
                                  f"{self.path} is truncated or corrupt ({_first_line(e)}).") from e

    def image_message(self, m: BagMessage, index: int) -> ImageMessage:
        """Deserialize an Image / CompressedImage BagMessage; ``index`` is its position on its topic."""
        msg = self.deserialize(m)
        try:
            stamp = stamp_to_ns(msg.header.stamp)
            frame_id = str(msg.header.frame_id)
        except AttributeError as e:
            raise BagTopicError(f"topic {m.topic} in bag {self.path} carries {m.msgtype}, not an image.") from e
        return ImageMessage(m.topic, m.msgtype, index, m.log_time_ns, stamp, frame_id, msg, m.raw)

    def images(self, topic: str) -> Iterator[ImageMessage]:
        """Every image on ``topic`` (checked with :meth:`require_topic`) in log-time order."""
        self.require_topic(topic)
        for i, m in enumerate(self.messages([topic])):
            yield self.image_message(m, i)

    def camera_infos(self, topic: str) -> Iterator[CameraIntrinsics]:
        """Every sensor_msgs/CameraInfo on ``topic`` in log-time order."""
        self.require_topic(topic, (CAMERA_INFO,), role="camera_info")
        for m in self.messages([topic]):
            yield CameraIntrinsics.from_msg(self.deserialize(m))


def read_bag_info(path: str | os.PathLike) -> BagInfo:
    """Open a bag just long enough to read its :class:`BagInfo`."""
    with BagReader(path) as r:
        return r.info


# -- writing -------------------------------------------------------------------------------------------------------

def distro_version(distro: str) -> int:
    """rosbag2 metadata version for a ROS 2 distribution name; raises BagWriteError for an unknown one."""
    v = DISTRO_VERSIONS.get(str(distro).lower())
    if v is None:
        raise BagWriteError(f"unknown ROS 2 distribution {distro!r}; choose one of {', '.join(DISTRO_VERSIONS)}.")
    return v


class BagWriter:
    """Write a ROS 2 bag folder atomically.

    Args:
        path: the bag folder to create (it holds ``metadata.yaml`` and ``<name>.db3`` or ``<name>.mcap``).
        distro: ``humble`` / ``iron`` (metadata version 8) or ``jazzy`` / ``kilted`` / ``rolling`` (version 9);
            the message definitions of that distribution are embedded.
        storage: ``sqlite3`` or ``mcap``.
        overwrite: replace an existing bag at ``path`` on commit instead of refusing.
        custom: ``custom_data`` strings stored in metadata.yaml (e.g. the ground-truth label set).

    Everything is written into a hidden folder beside ``path``; :meth:`commit` (called on a clean exit of
    the ``with`` block) moves it into place, :meth:`abort` (on an exception) deletes it.
    """

    def __init__(self, path: str | os.PathLike, *, distro: str = "jazzy", storage: str = "sqlite3",
                 overwrite: bool = False, custom: dict[str, str] | None = None):
        self.path = Path(path)
        self.version = distro_version(distro)
        self.distro = distro.lower()
        if storage not in STORAGES:
            raise BagWriteError(f"unknown bag storage {storage!r}; choose one of {', '.join(STORAGES)}.")
        self.storage = storage
        self.overwrite = overwrite
        self.check_path(self.path, overwrite)
        self.typestore = get_typestore(_DISTRO_STORES[self.distro])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=".seg-ros-partial-", dir=self.path.parent))
        except OSError as e:
            raise BagWriteError(f"cannot create bag {self.path} ({e.strerror}).") from e
        self._writer = Writer(self._tmp / self.path.name, version=self.version,  # type: ignore[arg-type]
                              storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
        for k, v in (custom or {}).items():
            self._writer.set_custom_data(k, str(v))
        self._writer.open()
        self._conns: dict[str, Any] = {}
        self._types: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._state = "open"
        t = self.typestore.types
        self._Image, self._Compressed, self._CameraInfo = t[IMAGE], t[COMPRESSED_IMAGE], t[CAMERA_INFO]
        self._Header, self._Time, self._Roi = (t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"],
                                               t["sensor_msgs/msg/RegionOfInterest"])

    def set_custom(self, key: str, value: str) -> None:
        """Store ``custom_data`` ``key`` = ``value`` in metadata.yaml (written on :meth:`close`)."""
        self._check_open()
        self._writer.set_custom_data(key, str(value))

    # topics and raw messages

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Register ``topic`` with ``msgtype``; repeated calls with the same pair do nothing."""
        if topic in self._types:
            if self._types[topic] != msgtype:
                raise BagWriteError(f"topic {topic} is already {self._types[topic]}, it cannot also carry {msgtype}.")
            return
        if not topic.startswith("/") or topic.endswith("/") or " " in topic:
            raise BagWriteError(f"topic name {topic!r} must be absolute, like /camera/image_raw.")
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                         offered_qos_profiles=[DEFAULT_QOS])
        self._types[topic] = msgtype
        self.counts[topic] = 0

    @staticmethod
    def check_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
        """``path`` as a Path; BagWriteError unless a bag folder can be written there (nothing is created)."""
        p = Path(path)
        if os.path.lexists(p) and not overwrite:
            raise BagWriteError(f"{p} already exists; remove it, choose another path or allow overwriting.")
        if os.path.lexists(p) and not p.is_dir():
            raise BagWriteError(f"{p} exists and is not a folder; it cannot be replaced by a bag.")
        try:
            check_creatable(p.parent, p, "bag")
        except InputError as e:
            raise BagWriteError(str(e)) from None
        return p

    def write_raw(self, topic: str, msgtype: str, raw: bytes | memoryview, log_time_ns: int) -> None:
        """Write an already serialized (CDR) message, e.g. one copied from another bag."""
        self._check_open()
        self.add_topic(topic, msgtype)
        self._writer.write(self._conns[topic], int(log_time_ns), raw)
        self.counts[topic] += 1

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Serialize and write a message object of this writer's typestore."""
        self.write_raw(topic, msg.__msgtype__, self.typestore.serialize_cdr(msg, msg.__msgtype__), log_time_ns)

    # images

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nsec = ns_to_sec_nanosec(stamp_ns)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nsec), frame_id=frame_id)

    def write_image(self, topic: str, array: np.ndarray, stamp_ns: int, frame_id: str = "camera",
                    log_time_ns: int | None = None, encoding: str | None = None) -> None:
        """Write an (H, W) uint8 (mono8), (H, W, 3) uint8 RGB (rgb8) or (H, W) float32 (32FC1) array as an Image.

        ``log_time_ns`` defaults to ``stamp_ns``; ``encoding`` checks or re-labels the array (``bgr8``).
        """
        f = array_to_image_fields(array, encoding)
        msg = self._Image(header=self.header(stamp_ns, frame_id), height=f.height, width=f.width,
                          encoding=f.encoding, is_bigendian=f.is_bigendian, step=f.step, data=f.data)
        self.write(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)

    def write_compressed(self, topic: str, rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera",
                         log_time_ns: int | None = None, fmt: str = "jpeg", quality: int = 95) -> int:
        """Encode an (H, W, 3) uint8 RGB frame as JPEG (``quality`` 1..100) or PNG and write a CompressedImage.

        The ``format`` field follows image_transport's compressed plugin (``rgb8; jpeg compressed bgr8``).
        Returns the encoded size in bytes.
        """
        if fmt not in ("jpeg", "png"):
            raise BagWriteError(f"compressed image format must be jpeg or png, not {fmt!r}.")
        if not 1 <= int(quality) <= 100:
            raise BagWriteError(f"JPEG quality must lie in 1..100, not {quality}.")
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
        ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
        if not ok:
            raise BagWriteError(f"OpenCV could not encode a {rgb.shape} frame as {fmt}.")
        msg = self._Compressed(header=self.header(stamp_ns, frame_id), format=f"rgb8; {fmt} compressed bgr8",
                               data=buf.reshape(-1))
        self.write(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)
        return int(buf.size)

    def write_camera_info(self, topic: str, info: CameraIntrinsics, stamp_ns: int, frame_id: str = "camera",
                          log_time_ns: int | None = None) -> None:
        """Write a sensor_msgs/CameraInfo with ``info``'s calibration and the given header."""
        roi = self._Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        msg = self._CameraInfo(header=self.header(stamp_ns, frame_id), height=info.height, width=info.width,
                               distortion_model=info.distortion_model, d=np.asarray(info.d, np.float64),
                               k=np.asarray(info.k, np.float64), r=np.asarray(info.r, np.float64),
                               p=np.asarray(info.p, np.float64), binning_x=0, binning_y=0, roi=roi)
        self.write(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)

    # life cycle

    def _check_open(self) -> None:
        if self._state != "open":
            raise BagWriteError(f"bag {self.path} is already {self._state}.")

    def close(self) -> None:
        """Finish the bag (index, metadata.yaml) in the hidden folder; :meth:`commit` moves it into place."""
        if self._state == "open":
            try:
                self._writer.close()
            except Exception as e:
                self.abort()
                raise BagWriteError(f"cannot finish bag {self.path} ({_first_line(e)}).") from e
            self._state = "closed"

    def commit(self) -> Path:
        """Close if needed and move the bag to ``path`` (replacing an existing one if ``overwrite``)."""
        self.close()
        if self._state != "closed":
            raise BagWriteError(f"bag {self.path} was {self._state} and cannot be committed.")
        old = None
        if self.path.exists():
            if not self.overwrite:
                self.abort()
                raise BagWriteError(f"{self.path} appeared while the bag was written; nothing was replaced.")
            old = self._tmp / ".replaced"
            os.replace(self.path, old)
        os.replace(self._tmp / self.path.name, self.path)
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._state = "committed"
        return self.path

    def abort(self) -> None:
        """Discard everything written; ``path`` is left as it was."""
        if self._state == "open":
            try:
                self._writer.abort()
            except Exception:
                pass
        if self._state != "committed":
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._state = "aborted"

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                raise_if_interrupted()
            except KeyboardInterrupt:
                self.abort()
                raise
            self.commit()
        else:
            self.abort()


# -- dataset → bag ----------------------------------------------------------------------------------------------

DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000
"""Header stamp (and log time) of the first frame of a dataset bag: 2023-11-14 22:13:20 UTC, in nanoseconds."""
MAX_STAMP_NS = (2**31 - 1) * 10**9 + 999_999_999
"""Latest header stamp, in nanoseconds: builtin_interfaces/Time holds int32 seconds (2038-01-19)."""
DEFAULT_CAMERA = "camera"
"""Namespace (and frame id) of a dataset bag's one camera."""
DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
DEFAULT_GT_TOPIC = "/camera/gt_labels"
DEFAULT_CAMERA_INFO_TOPIC = "/camera/camera_info"
CUSTOM_LABEL_SET = "seg_ros.gt_label_set"
CUSTOM_IMAGE_TOPIC = "seg_ros.image_topic"
CUSTOM_GT_TOPIC = "seg_ros.gt_topic"
CUSTOM_SOURCE = "seg_ros.source"
CUSTOM_SEQUENCES = "seg_ros.sequences"
"""custom_data key of a bag whose frames come from several dataset sequences: JSON ``[[sequence, frames], ...]``,
runs of consecutive image-topic frames in topic order (read back by :func:`recorded_sequences`)."""
CUSTOM_CAMERAS = "seg_ros.cameras"
"""custom_data key of a multi-camera bag: the camera names, comma-separated; each camera's topics and source are
under ``seg_ros.cameras.<name>.image_topic`` / ``.gt_topic`` / ``.camera_info_topic`` / ``.source``."""



@dataclass(frozen=True)
class CameraTopics:
    """One camera of a dataset bag: its name (namespace and frame id) and its image, ground-truth and camera_info
    topics."""

    name: str
    image_topic: str
    gt_topic: str
    camera_info_topic: str

    @classmethod
    def under(cls, name: str, image_format: str = "raw") -> CameraTopics:
        """The default topics with the ``/camera`` namespace replaced by ``/<name>``: ``/<name>/image_raw`` (with
        ``/compressed`` for ``image_format="jpeg"``), ``/<name>/gt_labels``, ``/<name>/camera_info``."""
        def moved(topic: str) -> str:
            return f"/{name}" + topic[len("/" + DEFAULT_CAMERA):]

        image = DEFAULT_IMAGE_TOPIC + ("/compressed" if image_format == "jpeg" else "")
        return cls(name, moved(image), moved(DEFAULT_GT_TOPIC), moved(DEFAULT_CAMERA_INFO_TOPIC))


def check_camera_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple; BagWriteError unless there is at least one, each a ROS name token
    (``[A-Za-z][A-Za-z0-9_]*``) and no two alike."""
    names = tuple(names)
    if not names:
        raise BagWriteError("give at least one camera name.")
    for n in names:
        if not CAMERA_NAME.fullmatch(n):
            raise BagWriteError(f"camera name {n!r} is not a ROS name token: it must start with a letter and hold "
                                "only letters, digits and underscores.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BagWriteError(f"camera names must differ; {', '.join(repeated)} is given more than once.")
    return names


def recorded_cameras(info: BagInfo) -> tuple[CameraTopics, ...]:
    """The cameras a multi-camera dataset bag records in its metadata (empty for any other bag).

    Raises BagCorruptError when a recorded camera lacks one of its topics in ``custom_data``.
    """
    listed = info.custom.get(CUSTOM_CAMERAS, "")
    cameras = []
    for name in filter(None, listed.split(",")):
        keys = [f"{CUSTOM_CAMERAS}.{name}.{k}" for k in ("image_topic", "gt_topic", "camera_info_topic")]
        missing = [k for k in keys if k not in info.custom]
        if missing:
            raise BagCorruptError(f"bag {info.path} records camera {name} without {missing[0]} in its metadata.")
        cameras.append(CameraTopics(name, *(info.custom[k] for k in keys)))
    return tuple(cameras)


def sequence_runs(frame_names: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """(sequence, frame count) runs of consecutive frames in order (:func:`~seg_ros.io.datasets.sequence_of`
    of each name); empty unless every name names a sequence and there are at least two sequences."""
    sequences = [sequence_of(n) for n in frame_names]
    if not sequences or None in sequences or len(set(sequences)) < 2:
        return ()
    runs: list[list[Any]] = []
    for seq in sequences:
        if runs and runs[-1][0] == seq:
            runs[-1][1] += 1
        else:
            runs.append([seq, 1])
    return tuple((str(name), int(n)) for name, n in runs)


def recorded_sequences(info: BagInfo) -> tuple[tuple[str, int], ...]:
    """The (sequence, frame count) runs of the image topic that ``bag-from-dataset`` recorded
    (:data:`CUSTOM_SEQUENCES`); empty for a bag without them. BagCorruptError when the entry is not such a list."""
    text = info.custom.get(CUSTOM_SEQUENCES)
    if text is None:
        return ()
    try:
        runs = tuple((name, count) for name, count in json.loads(text))
    except (ValueError, TypeError) as e:
        raise BagCorruptError(f"bag {info.path} records its sequences garbled in its metadata ({e}).") from e
    if not all(isinstance(name, str) and isinstance(count, int) and count > 0 for name, count in runs):
        raise BagCorruptError(f"bag {info.path} records its sequences garbled in its metadata.")
    return runs


@dataclass(frozen=True)
class DatasetBagSummary:
    """What :func:`write_dataset_bag` wrote. ``bytes``: size of the bag folder; ``seconds``: wall time taken."""

    path: Path
    source: str
    frames: int
    labelled: int
    image_topic: str
    gt_topic: str
    camera_info_topic: str
    image_format: str
    fps: float
    storage: str
    distro: str
    version: int
    label_set: str
    bytes: int
    seconds: float


@dataclass(frozen=True)
class CameraSummary:
    """One camera of a multi-camera bag: its topics, its source's description, frames written and labelled."""

    topics: CameraTopics
    source: str
    frames: int
    labelled: int


@dataclass(frozen=True)
class MultiCameraBagSummary:
    """What :func:`write_multi_camera_bag` wrote. ``bytes``: size of the bag folder; ``seconds``: wall time taken."""

    path: Path
    cameras: tuple[CameraSummary, ...]
    image_format: str
    fps: float
    storage: str
    distro: str
    version: int
    label_set: str
    bytes: int
    seconds: float

    @property
    def frames(self) -> int:
        """Frames per camera (every camera has the same stamps)."""
        return self.cameras[0].frames


@dataclass(frozen=True)
class _Stream:
    """One camera being written: its frames, topics and frame id."""

    source: FrameSource
    topics: CameraTopics
    frame_id: str


def _check_bag_options(fps: float, image_format: str, limit: int | None, start_ns: int, jpeg_quality: int) -> None:
    if not (0.0 < float(fps) <= 1000.0):
        raise BagWriteError(f"frame rate must lie in (0, 1000] frames per second, not {fps}.")
    if image_format not in ("raw", "jpeg"):
        raise BagWriteError(f"image format must be raw (rgb8) or jpeg, not {image_format!r}.")
    if limit is not None and limit < 1:
        raise BagWriteError(f"limit must be at least 1 frame, not {limit}.")
    if not 0 <= start_ns <= MAX_STAMP_NS:
        raise BagWriteError(f"start time must lie in [0, {MAX_STAMP_NS // 10**9}] s (the range of a header "
                            f"stamp), not {start_ns / 1e9:g} s.")
    if not 1 <= jpeg_quality <= 100:
        raise BagWriteError(f"JPEG quality must lie in 1..100, not {jpeg_quality}.")


def _check_last_stamp(start_ns: int, total: int, fps: float) -> None:
    if start_ns + (total - 1) * 1e9 / fps > MAX_STAMP_NS:  # in floats: a tiny fps gives inf, not an error
        raise BagWriteError(f"the last of {total} frames at {fps:g} fps would be stamped after the largest "
                            f"stamp ({MAX_STAMP_NS // 10**9} s); give an earlier start time or a higher frame rate.")


def _write_streams(w: BagWriter, streams: Sequence[_Stream], total: int, *, fps: float, image_format: str,
                   jpeg_quality: int, start_ns: int, progress: bool,
                   names: list[str] | None = None) -> list[tuple[int, int]]:
    """Write frame i of every stream with stamp ``start_ns + round(i * 1e9 / fps)``, i < ``total``, camera after
    camera; returns (frames, labelled) per stream. ``names``, when given, receives the first stream's frame
    names in order."""
    from tqdm import tqdm

    for s in streams:
        w.add_topic(s.topics.image_topic, IMAGE if image_format == "raw" else COMPRESSED_IMAGE)
        w.add_topic(s.topics.gt_topic, IMAGE)
        w.add_topic(s.topics.camera_info_topic, CAMERA_INFO)
    counts = [[0, 0] for _ in streams]
    bar = tqdm(total=total, desc="bag-from-dataset", unit="frame", disable=not progress)
    try:
        for i, frames in enumerate(zip(*(s.source for s in streams))):
            if i >= total:
                break
            stamp = start_ns + round(i * 1e9 / fps)
            if names is not None:
                names.append(frames[0].name)
            for s, frame, count in zip(streams, frames, counts):
                t, fid = s.topics, s.frame_id
                h, w_ = frame.image.shape[:2]
                if image_format == "raw":
                    w.write_image(t.image_topic, frame.image, stamp, fid)
                else:
                    w.write_compressed(t.image_topic, frame.image, stamp, fid, quality=jpeg_quality)
                if frame.labels is not None:
                    w.write_image(t.gt_topic, np.ascontiguousarray(frame.labels, np.uint8), stamp, fid)
                    count[1] += 1
                info = (CameraIntrinsics.pinhole(h, w_, *frame.intrinsics) if frame.intrinsics is not None
                        else CameraIntrinsics(height=h, width=w_))
                w.write_camera_info(t.camera_info_topic, info, stamp, fid)
                count[0] += 1
            bar.update(1)
    finally:
        bar.close()
    return [(f, n) for f, n in counts]


def _folder_bytes(path: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())


def write_dataset_bag(
    source: FrameSource,
    out: str | os.PathLike,
    *,
    fps: float = 10.0,
    image_format: str = "raw",
    jpeg_quality: int = 95,
    storage: str = "sqlite3",
    distro: str = "jazzy",
    image_topic: str | None = None,
    gt_topic: str = DEFAULT_GT_TOPIC,
    camera_info_topic: str = DEFAULT_CAMERA_INFO_TOPIC,
    frame_id: str = DEFAULT_CAMERA,
    start_ns: int = DEFAULT_START_NS,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetBagSummary:
    """Write a frame source (see :mod:`seg_ros.io.datasets`) as a bag a camera could have recorded.

    Frame i gets header stamp and log time ``start_ns + round(i * 1e9 / fps)`` on three topics:
    ``image_topic`` (sensor_msgs/Image rgb8 for ``image_format="raw"``, CompressedImage JPEG for ``"jpeg"``;
    default ``/camera/image_raw`` or ``/camera/image_raw/compressed``), ``gt_topic`` (Image mono8 class ids,
    always lossless; only for frames that have labels) and ``camera_info_topic`` (the dataset's intrinsics, or
    an all-zero K = uncalibrated). The ground-truth label set and the topics are recorded in metadata.yaml's
    ``custom_data``, and so are the sequences of the frames when their names span several
    (:data:`CUSTOM_SEQUENCES`). The bag is written atomically.
    """
    _check_bag_options(fps, image_format, limit, start_ns, jpeg_quality)
    image_topic = image_topic or CameraTopics.under(DEFAULT_CAMERA, image_format).image_topic
    if len({image_topic, gt_topic, camera_info_topic}) != 3:
        raise BagWriteError("the image, ground-truth and camera_info topics must be three different topics.")
    label_set = source.label_set
    total = len(source) if limit is None else min(len(source), limit)
    _check_last_stamp(start_ns, total, fps)
    custom = {CUSTOM_LABEL_SET: label_set.name, CUSTOM_IMAGE_TOPIC: image_topic, CUSTOM_GT_TOPIC: gt_topic,
              CUSTOM_SOURCE: str(source.name)}
    t0 = time.perf_counter()
    topics = CameraTopics(frame_id, image_topic, gt_topic, camera_info_topic)
    names: list[str] = []
    with BagWriter(out, distro=distro, storage=storage, overwrite=overwrite, custom=custom) as w:
        [(frames, labelled)] = _write_streams(w, [_Stream(source, topics, frame_id)], total, fps=fps,
                                              image_format=image_format, jpeg_quality=jpeg_quality,
                                              start_ns=start_ns, progress=progress, names=names)
        runs = sequence_runs(names)
        if runs:
            w.set_custom(CUSTOM_SEQUENCES, json.dumps([list(r) for r in runs]))
    return DatasetBagSummary(path=Path(out), source=str(source.name), frames=frames, labelled=labelled,
                             image_topic=image_topic, gt_topic=gt_topic, camera_info_topic=camera_info_topic,
                             image_format=image_format, fps=float(fps), storage=storage, distro=distro.lower(),
                             version=distro_version(distro), label_set=label_set.name, bytes=_folder_bytes(out),
                             seconds=time.perf_counter() - t0)


def write_multi_camera_bag(
    cameras: Sequence[tuple[str, FrameSource]],
    out: str | os.PathLike,
    *,
    fps: float = 10.0,
    image_format: str = "raw",
    jpeg_quality: int = 95,
    storage: str = "sqlite3",
    distro: str = "jazzy",
    start_ns: int = DEFAULT_START_NS,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MultiCameraBagSummary:
    """Write several frame sources as one bag of several cameras, as a robot with that many cameras records.

    ``cameras``: (name, source) pairs; names are ROS name tokens (:func:`check_camera_names`). Camera ``name``
    gets the topics of :meth:`CameraTopics.under` and frame id ``name``; frame i of every camera gets header stamp
    and log time ``start_ns + round(i * 1e9 / fps)``, so all cameras share their stamps. As many frames are written
    per camera as the shortest source holds (at most ``limit``). Every source must use the same label set. The
    label set, the camera names and each camera's topics and source are recorded in metadata.yaml's
    ``custom_data`` (:data:`CUSTOM_CAMERAS`, read back by :func:`recorded_cameras`). The bag is written atomically.
    """
    names = check_camera_names([name for name, _ in cameras])
    _check_bag_options(fps, image_format, limit, start_ns, jpeg_quality)
    sources = [source for _, source in cameras]
    label_sets = sorted({s.label_set.name for s in sources})
    if len(label_sets) != 1:
        raise BagWriteError(f"every camera's labels must use one label set, not {' and '.join(label_sets)}.")
    total = min(len(s) for s in sources) if limit is None else min(min(len(s) for s in sources), limit)
    _check_last_stamp(start_ns, total, fps)
    streams = [_Stream(s, CameraTopics.under(n, image_format), n) for n, s in zip(names, sources)]
    custom = {CUSTOM_LABEL_SET: label_sets[0], CUSTOM_CAMERAS: ",".join(names)}
    for s in streams:
        key = f"{CUSTOM_CAMERAS}.{s.topics.name}"
        custom.update({f"{key}.image_topic": s.topics.image_topic, f"{key}.gt_topic": s.topics.gt_topic,
                       f"{key}.camera_info_topic": s.topics.camera_info_topic, f"{key}.source": str(s.source.name)})
    t0 = time.perf_counter()
    with BagWriter(out, distro=distro, storage=storage, overwrite=overwrite, custom=custom) as w:
        counts = _write_streams(w, streams, total, fps=fps, image_format=image_format, jpeg_quality=jpeg_quality,
                                start_ns=start_ns, progress=progress)
    summaries = tuple(CameraSummary(s.topics, str(s.source.name), f, n) for s, (f, n) in zip(streams, counts))
    return MultiCameraBagSummary(path=Path(out), cameras=summaries, image_format=image_format, fps=float(fps),
                                 storage=storage, distro=distro.lower(), version=distro_version(distro),
                                 label_set=label_sets[0], bytes=_folder_bytes(out), seconds=time.perf_counter() - t0)


__all__ = [
    "CAMERA_INFO", "COMPRESSED_IMAGE", "CUSTOM_CAMERAS", "CUSTOM_SEQUENCES", "DEFAULT_QOS", "DISTRO_VERSIONS", "IMAGE",
    "IMAGE_TYPES", "STORAGES",
    "BagCorruptError", "BagError", "BagInfo", "BagMessage", "BagNotFoundError", "BagReader", "BagTopicError",
    "BagWriteError", "BagWriter", "CameraIntrinsics", "CameraSummary", "CameraTopics", "DatasetBagSummary",
    "EmptyBagError", "ImageMessage", "MultiCameraBagSummary", "TopicInfo",
    "check_camera_names", "distro_version", "ns_to_sec_nanosec", "read_bag_info", "recorded_cameras",
    "recorded_sequences", "sequence_runs", "stamp_to_ns",
    "write_dataset_bag", "write_multi_camera_bag",
]
