"""``seg-ros bag-from-dataset``: a dataset or a synthetic drive as a ROS 2 bag with ground truth."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError

ONE_CAMERA_OPTIONS = ("image_topic", "gt_topic", "camera_info_topic", "frame_id")
"""Options that name the topics or frame id of a bag's one camera; --cameras sets those per camera."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from seg_ros.io.bags import DEFAULT_CAMERA_INFO_TOPIC, DEFAULT_GT_TOPIC, DEFAULT_START_NS, DISTRO_VERSIONS, STORAGES

    p = sub.add_parser("bag-from-dataset", help="write a dataset or a synthetic drive as a ROS 2 bag with ground truth",
                       description="Write camera images, ground-truth labels (mono8, lossless) and camera_info on "
                                   "three topics with identical stamps, at a chosen frame rate.")
    src = p.add_argument_group("source (exactly one)")
    src.add_argument("--camvid", metavar="DIR", help="CamVid-layout folder: <DIR>/<split>/images + labels")
    src.add_argument("--cityscapes", metavar="DIR",
                     help="Cityscapes root: leftImg8bit/<split>/<city>, gtFine labelIds mapped to trainIds")
    src.add_argument("--images", metavar="DIR", help="a plain image folder (name order)")
    src.add_argument("--synthetic", metavar="N", type=int, help="a synthetic drive of N frames")
    p.add_argument("--labels", metavar="DIR", help="with --images: label PNGs named like the images (optional)")
    p.add_argument("--label-set", default="camvid", help="with --images: label set of the labels (default: camvid)")
    p.add_argument("--split", help="CamVid / Cityscapes split (default: val)")
    p.add_argument("--city", action="append", help="Cityscapes city, repeatable (default: all)")
    p.add_argument("--size", type=a.resolution, default=(360, 640), help="synthetic frame size HxW (default 360x640)")
    p.add_argument("--seed", type=int, default=2024, help="synthetic drive seed (default: 2024)")
    p.add_argument("--cameras", metavar="NAME[,NAME...]",
                   help="with --synthetic: one drive per camera (seed --seed + its position) on /<NAME>/image_raw, "
                        "/<NAME>/gt_labels and /<NAME>/camera_info, frame id NAME, all with the same stamps")
    p.add_argument("--out", required=True, help="bag folder to create")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of the stamps (default: 10)")
    p.add_argument("--image-format", choices=["raw", "jpeg"], default="raw",
                   help="raw: sensor_msgs/Image rgb8; jpeg: CompressedImage (default: raw)")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--storage", choices=STORAGES, default="sqlite3", help="rosbag2 storage (default: sqlite3)")
    p.add_argument("--distro", choices=sorted(DISTRO_VERSIONS), default="jazzy",
                   help="humble/iron: metadata version 8; jazzy/kilted/rolling: 9 (default: jazzy)")
    p.add_argument("--image-topic", help="default /camera/image_raw (raw) or /camera/image_raw/compressed (jpeg)")
    p.add_argument("--gt-topic", help=f"default: {DEFAULT_GT_TOPIC}")
    p.add_argument("--camera-info-topic", help=f"default: {DEFAULT_CAMERA_INFO_TOPIC}")
    p.add_argument("--frame-id", help="default: camera")
    p.add_argument("--start-time", type=a.number(float, 0.0), default=DEFAULT_START_NS / 1e9,
                   help="stamp of the first frame, seconds since the epoch (default: %(default)d)")
    p.add_argument("--limit", type=int, help="write at most this many frames")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    a.add_max_pixels(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


def _camera_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The names of ``--cameras``, checked against the source and the one-camera options."""
    from seg_ros.io.bags import check_camera_names

    if args.synthetic is None:
        raise SegRosError("--cameras goes with --synthetic N (one synthetic drive per camera).")
    names = check_camera_names(args.cameras.split(","))
    given = [f"--{n.replace('_', '-')}" for n in ONE_CAMERA_OPTIONS if getattr(args, n) is not None]
    if given:
        raise SegRosError(f"{', '.join(given)} cannot be combined with --cameras, which gives each camera "
                          "/<NAME>/... topics and frame id NAME.")
    return names


def _run_cameras(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    from seg_ros.io.bags import write_multi_camera_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    cameras = [(n, SyntheticDriveSource(args.seed + i, args.synthetic, args.size, max_pixels=args.max_pixels))
               for i, n in enumerate(names)]
    s = write_multi_camera_bag(
        cameras, args.out, fps=args.fps, image_format=args.image_format, jpeg_quality=args.jpeg_quality,
        storage=args.storage, distro=args.distro, start_ns=round(args.start_time * 1e9), limit=args.limit,
        overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {s.path}: {len(s.cameras)} cameras of {s.frames} frames each ({s.label_set} ground truth) at "
          f"{s.fps:g} fps, {s.storage} storage, rosbag2 metadata version {s.version} ({s.distro}), "
          f"{s.bytes / 1e6:.1f} MB in {s.seconds:.1f} s")
    kind = "rgb8 Image" if s.image_format == "raw" else "JPEG CompressedImage"
    for c in s.cameras:
        t = c.topics
        print(f"camera {t.name} ({c.source}, {c.labelled} labelled): {t.image_topic} ({kind}), "
              f"{t.gt_topic} (mono8 labels), {t.camera_info_topic}")


def run(args: argparse.Namespace) -> None:
    from seg_ros.core.labels import get_label_set
    from seg_ros.io.bags import DEFAULT_CAMERA, DEFAULT_CAMERA_INFO_TOPIC, DEFAULT_GT_TOPIC, write_dataset_bag
    from seg_ros.io.datasets import CamVidSource, CityscapesSource, ImageFolderSource, SyntheticDriveSource

    given = [n for n in ("camvid", "cityscapes", "images", "synthetic") if getattr(args, n) is not None]
    if len(given) != 1:
        raise SegRosError("give exactly one source: --camvid DIR, --cityscapes DIR, --images DIR or --synthetic N.")
    if args.labels is not None and args.images is None:
        raise SegRosError("--labels goes with --images (a plain image folder).")
    if args.cameras is not None:
        _run_cameras(args, _camera_names(args))
        return
    if args.camvid is not None:
        source = CamVidSource(args.camvid, args.split or "val", max_pixels=args.max_pixels)
    elif args.cityscapes is not None:
        source = CityscapesSource(args.cityscapes, args.split or "val", args.city, max_pixels=args.max_pixels)
    elif args.images is not None:
        source = ImageFolderSource(args.images, args.labels, get_label_set(args.label_set),
                                   max_pixels=args.max_pixels)
    else:
        source = SyntheticDriveSource(args.seed, args.synthetic, args.size, max_pixels=args.max_pixels)
    s = write_dataset_bag(
        source, args.out, fps=args.fps, image_format=args.image_format, jpeg_quality=args.jpeg_quality,
        storage=args.storage, distro=args.distro, image_topic=args.image_topic,
        gt_topic=_or(args.gt_topic, DEFAULT_GT_TOPIC), camera_info_topic=_or(args.camera_info_topic,
                                                                               DEFAULT_CAMERA_INFO_TOPIC),
        frame_id=_or(args.frame_id, DEFAULT_CAMERA), start_ns=round(args.start_time * 1e9), limit=args.limit,
        overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {s.path}: {s.frames} frames from {s.source} ({s.labelled} with {s.label_set} ground truth) at "
          f"{s.fps:g} fps, {s.storage} storage, rosbag2 metadata version {s.version} ({s.distro}), "
          f"{s.bytes / 1e6:.1f} MB in {s.seconds:.1f} s")
    print(f"topics: {s.image_topic} ({'rgb8 Image' if s.image_format == 'raw' else 'JPEG CompressedImage'}), "
          f"{s.gt_topic} (mono8 labels), {s.camera_info_topic}")
