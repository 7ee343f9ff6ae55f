"""One pass over a bag: camera frames in log-time order, each paired with its ground-truth message by stamp."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from seg_ros.io.bags import CUSTOM_GT_TOPIC, CUSTOM_IMAGE_TOPIC, BagInfo, BagReader, BagTopicError, ImageMessage


@dataclass
class FramePair:
    """A camera frame, its ground-truth message (None when none arrived in time), and the seconds spent reading
    and deserialising the bag since the previous pair was handed out."""

    frame: ImageMessage
    gt: ImageMessage | None
    read_s: float


class Replay:
    """Walks the bag once: yields every camera frame in order with its ground-truth message (or None).

    A frame waits for a ground-truth message with the same header stamp until the bag's log time has moved
    ``window_ns`` past it; ground-truth messages that never meet a frame are counted in ``gt_unmatched``, repeated
    ground-truth stamps in ``gt_duplicates``. CameraInfo messages are handed to ``on_camera_info`` as they pass.
    """

    def __init__(self, reader: BagReader, image_topic: str, gt_topic: str | None, window_ns: int,
                 camera_info_topics: list[str], on_camera_info: Callable[[Any], None] | None):
        self.reader, self.image_topic, self.gt_topic = reader, image_topic, gt_topic
        self.window_ns = window_ns
        self.camera_info_topics = camera_info_topics
        self.on_camera_info = on_camera_info
        self.gt_unmatched = 0
        self.gt_duplicates = 0

    def __iter__(self) -> Iterator[FramePair]:
        topics = [self.image_topic] + ([self.gt_topic] if self.gt_topic else []) + self.camera_info_topics
        pending: deque[ImageMessage] = deque()
        waiting: set[int] = set()  # stamps of the pending frames
        gts: dict[int, ImageMessage] = {}
        n_img = n_gt = 0
        t0 = time.perf_counter()
        for m in self.reader.messages(topics):
            now = m.log_time_ns
            # frames whose wait is over leave first, before this message can pair with them
            while pending and self.gt_topic is not None and now - pending[0].log_time_ns > self.window_ns:
                f = pending.popleft()
                waiting.discard(f.stamp_ns)
                yield FramePair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
                t0 = time.perf_counter()
            if m.topic == self.image_topic:
                f = self.reader.image_message(m, n_img)
                n_img += 1
                pending.append(f)
                waiting.add(f.stamp_ns)
            elif m.topic == self.gt_topic:
                g = self.reader.image_message(m, n_gt)
                n_gt += 1
                if g.stamp_ns in gts:
                    self.gt_duplicates += 1
                gts[g.stamp_ns] = g
            elif self.on_camera_info is not None:
                self.on_camera_info(m)
            while pending and (self.gt_topic is None or pending[0].stamp_ns in gts):
                f = pending.popleft()
                waiting.discard(f.stamp_ns)
                yield FramePair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
                t0 = time.perf_counter()
            if gts:
                stale = [s for s, g in gts.items() if now - g.log_time_ns > self.window_ns and s not in waiting]
                for s in stale:
                    del gts[s]
                self.gt_unmatched += len(stale)
        while pending:
            f = pending.popleft()
            yield FramePair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
            t0 = time.perf_counter()
        self.gt_unmatched += len(gts)


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
