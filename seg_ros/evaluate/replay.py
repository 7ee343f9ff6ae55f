"""One pass over a bag: camera frames in log-time order, each paired with its ground-truth message by stamp.

Several cameras replay in the same pass, each with its own image topic and ground-truth topic (or none).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from seg_ros.io.bags import CUSTOM_GT_TOPIC, CUSTOM_IMAGE_TOPIC, BagInfo, BagReader, BagTopicError, ImageMessage


@dataclass
class FramePair:
    """A camera frame, its ground-truth message (None when none arrived in time), the seconds spent reading and
    deserialising the bag since the previous pair was handed out, and the position of its camera in the replay's
    streams."""

    frame: ImageMessage
    gt: ImageMessage | None
    read_s: float
    camera: int = 0


@dataclass
class _Pairing:
    """One camera's frames waiting for ground truth, and its ground-truth messages waiting for a frame."""

    camera: int
    image_topic: str
    gt_topic: str | None
    pending: deque[ImageMessage] = field(default_factory=deque)
    waiting: set[int] = field(default_factory=set)  # stamps of the pending frames
    gts: dict[int, ImageMessage] = field(default_factory=dict)
    images_seen: int = 0
    gts_seen: int = 0
    unmatched: int = 0
    duplicates: int = 0

    def expired(self, now: int, window_ns: int) -> Iterator[tuple[ImageMessage, ImageMessage | None]]:
        """Frames whose wait for ground truth is over at log time ``now``."""
        while self.pending and self.gt_topic is not None and now - self.pending[0].log_time_ns > window_ns:
            yield self._release()

    def ready(self) -> Iterator[tuple[ImageMessage, ImageMessage | None]]:
        """Frames at the head of the queue whose ground truth has arrived (every frame without a gt topic)."""
        while self.pending and (self.gt_topic is None or self.pending[0].stamp_ns in self.gts):
            yield self._release()

    def drop_stale(self, now: int, window_ns: int) -> None:
        """Forget ground-truth messages no frame waits for that are older than the window."""
        if self.gts:
            stale = [s for s, g in self.gts.items() if now - g.log_time_ns > window_ns and s not in self.waiting]
            for s in stale:
                del self.gts[s]
            self.unmatched += len(stale)

    def finish(self) -> Iterator[tuple[ImageMessage, ImageMessage | None]]:
        """The frames still pending at the end of the bag; the ground truth left over counts as unmatched."""
        while self.pending:
            yield self._release()
        self.unmatched += len(self.gts)
        self.gts.clear()

    def _release(self) -> tuple[ImageMessage, ImageMessage | None]:
        f = self.pending.popleft()
        self.waiting.discard(f.stamp_ns)
        return f, self.gts.pop(f.stamp_ns, None)


class Replay:
    """Walks the bag once: yields every camera frame in order with its ground-truth message (or None).

    ``streams``: (image topic, ground-truth topic or None) per camera. A frame waits for a ground-truth message
    with the same header stamp on its camera's ground-truth topic until the bag's log time has moved ``window_ns``
    past it; ground-truth messages that never meet a frame are counted in :meth:`gt_unmatched`, repeated
    ground-truth stamps in :meth:`gt_duplicates`. CameraInfo messages are handed to ``on_camera_info`` as they pass.
    """

    def __init__(self, reader: BagReader, streams: Sequence[tuple[str, str | None]], window_ns: int,
                 camera_info_topics: list[str], on_camera_info: Callable[[Any], None] | None):
        self.reader = reader
        self.window_ns = window_ns
        self.camera_info_topics = camera_info_topics
        self.on_camera_info = on_camera_info
        self._cameras = [_Pairing(k, image, gt) for k, (image, gt) in enumerate(streams)]

    def gt_unmatched(self, camera: int = 0) -> int:
        """Ground-truth messages of ``camera`` that met no frame (complete once the replay has ended)."""
        return self._cameras[camera].unmatched

    def gt_duplicates(self, camera: int = 0) -> int:
        """Ground-truth messages of ``camera`` that repeated a stamp."""
        return self._cameras[camera].duplicates

    def __iter__(self) -> Iterator[FramePair]:
        cams = self._cameras
        by_image = {c.image_topic: c for c in cams}
        by_gt = {c.gt_topic: c for c in cams if c.gt_topic is not None}
        topics = [c.image_topic for c in cams] + list(by_gt) + self.camera_info_topics
        t0 = time.perf_counter()
        for m in self.reader.messages(topics):
            now = m.log_time_ns
            # frames whose wait is over leave first, before this message can pair with them
            for c in cams:
                for f, g in c.expired(now, self.window_ns):
                    yield FramePair(f, g, time.perf_counter() - t0, c.camera)
                    t0 = time.perf_counter()
            if (cam := by_image.get(m.topic)) is not None:
                f = self.reader.image_message(m, cam.images_seen)
                cam.images_seen += 1
                cam.pending.append(f)
                cam.waiting.add(f.stamp_ns)
            elif (cam := by_gt.get(m.topic)) is not None:
                g = self.reader.image_message(m, cam.gts_seen)
                cam.gts_seen += 1
                if g.stamp_ns in cam.gts:
                    cam.duplicates += 1
                cam.gts[g.stamp_ns] = g
            elif self.on_camera_info is not None:
                self.on_camera_info(m)
            for c in cams:
                for f, g in c.ready():
                    yield FramePair(f, g, time.perf_counter() - t0, c.camera)
                    t0 = time.perf_counter()
                c.drop_stale(now, self.window_ns)
        for c in cams:
            for f, g in c.finish():
                yield FramePair(f, g, time.perf_counter() - t0, c.camera)
                t0 = time.perf_counter()


def pick_image_topic(info: BagInfo, requested: str | None, gt_topic: str | None) -> str:
    """The camera topic: ``requested``, else the one ``bag-from-dataset`` recorded, else the bag's only image
    topic other than ``gt_topic``; BagTopicError when that leaves none or several."""
    if requested:
        return requested
    hinted = info.custom.get(CUSTOM_IMAGE_TOPIC)
    if hinted and info.topic(hinted) is not None:
        return hinted
    candidates = [t.name for t in info.image_topics() if t.name != gt_topic]
    if len(candidates) == 1:
        return candidates[0]
    raise BagTopicError(f"bag {info.path} has {len(candidates) or 'no'} candidate image topics; name one with "
                        f"--image-topic (its image topics are: {info.describe_image_topics()}).")


def recorded_gt_topic(info: BagInfo) -> str | None:
    """The ground-truth topic ``bag-from-dataset`` recorded in the bag's metadata, if the bag holds it."""
    hinted = info.custom.get(CUSTOM_GT_TOPIC)
    return hinted if hinted and info.topic(hinted) is not None else None
