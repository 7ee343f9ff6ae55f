"""Which cameras a run scores: their image topics, ground-truth topics and names, checked against the bag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import LabelSet
from seg_ros.evaluate.options import EvalOptions
from seg_ros.evaluate.replay import pick_image_topic, recorded_gt_topic
from seg_ros.io.bags import CUSTOM_LABEL_SET, IMAGE, BagInfo, BagReader, CameraTopics, recorded_cameras

_IMAGE_SUFFIXES = ("/image_raw", "/image_rect", "/image")


@dataclass(frozen=True)
class CameraInput:
    """One camera of a run: its name (the output topics' namespace in a run of several cameras), its image topic
    with the message type and count there, and its ground-truth topic (None: a folder or no ground truth)."""

    name: str
    image_topic: str
    image_type: str
    image_count: int
    gt_topic: str | None


def camera_name(image_topic: str) -> str:
    """A camera's name from its image topic: the topic without its leading slash and its image suffix
    (``/front/image_raw/compressed`` → ``front``); the whole topic when nothing else is left."""
    name = image_topic.strip("/").removesuffix("/compressed")
    for suffix in _IMAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name or image_topic


def _image_topics(info: BagInfo, opts: EvalOptions, recorded: Sequence[CameraTopics]) -> tuple[str, ...]:
    if opts.image_topics:
        return opts.image_topics
    if len(recorded) > 1:
        if opts.gt_topics or opts.gt_dir is not None:
            raise ConfigError(f"bag {info.path} records {len(recorded)} cameras "
                              f"({', '.join(c.name for c in recorded)}); name the camera of the ground truth with "
                              "--image-topic.")
        return tuple(c.image_topic for c in recorded)
    if recorded:
        return (recorded[0].image_topic,)
    return (pick_image_topic(info, None, opts.gt_topics[0] if opts.gt_topics else None),)


def _gt_topics(info: BagInfo, opts: EvalOptions, images: Sequence[str],
               recorded: Sequence[CameraTopics]) -> tuple[str | None, ...]:
    if opts.gt_topics:
        return opts.gt_topics
    if opts.gt_dir is not None:
        return (None,) * len(images)
    by_image = {c.image_topic: c for c in recorded}
    gts: list[str | None] = []
    for topic in images:
        cam = by_image.get(topic)
        if cam is not None:
            gts.append(cam.gt_topic if info.topic(cam.gt_topic) is not None else None)
        else:
            gts.append(recorded_gt_topic(info) if len(images) == 1 else None)
    return tuple(gts)


def _names(images: Sequence[str], recorded: Sequence[CameraTopics]) -> tuple[str, ...]:
    by_image = {c.image_topic: c.name for c in recorded}
    names = tuple(by_image.get(t) or camera_name(t) for t in images)
    if len(set(names)) < len(names):  # e.g. /a/image_raw and /a/image_raw/compressed
        names = tuple(t.strip("/") or t for t in images)
    return names


def resolve_cameras(reader: BagReader, opts: EvalOptions, label_set: LabelSet) -> tuple[CameraInput, ...]:
    """The cameras ``opts`` asks for in ``reader``'s bag, each image and ground-truth topic checked to be there.

    Raises EmptyBagError / BagTopicError for a missing or empty topic, BagCorruptError for unreadable camera
    metadata and ConfigError for a ground-truth topic that is also an image topic or ground truth of another label
    set than ``label_set``.
    """
    info = reader.info
    if info.message_count == 0:
        reader.require_topic(opts.image_topics[0] if opts.image_topics else "")  # raises EmptyBagError
    recorded = recorded_cameras(info)
    images = _image_topics(info, opts, recorded)
    gts = _gt_topics(info, opts, images, recorded)
    cameras = []
    for name, image_topic, gt_topic in zip(_names(images, recorded), images, gts):
        image_info = reader.require_topic(image_topic)
        if gt_topic is not None:
            if gt_topic in images:
                raise ConfigError(f"the ground-truth topic and the image topic are both {gt_topic}.")
            reader.require_topic(gt_topic, (IMAGE,), role="ground-truth")
        cameras.append(CameraInput(name, image_topic, image_info.msgtype, image_info.count, gt_topic))
    bag_labels = info.custom.get(CUSTOM_LABEL_SET)
    if any(c.gt_topic for c in cameras) and bag_labels and bag_labels != label_set.name:
        raise ConfigError(f"the ground truth in bag {opts.bag} uses the {bag_labels} label set but the model "
                          f"predicts {label_set.name}; evaluate it with a {bag_labels} model.")
    return tuple(cameras)
