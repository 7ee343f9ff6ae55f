"""sensor_msgs/CameraInfo for the node's outputs: the input's calibration, scaled when the size differs.

The outputs (labels, colour, overlay, confidence) have the input image's size,
so ``~/camera_info`` is normally the incoming camera_info with the image's
header. When the camera_info describes another size than the image (a driver
that downscales images but keeps full-resolution calibration), the
intrinsics are scaled the way image_proc's resize node does it: ``fx, cx, P[0],
P[2], P[3]`` by ``sx = width / info.width`` and ``fy, cy, P[5], P[6]`` by
``sy = height / info.height``; the ROI scales with them; D, R, binning and the
distortion model are kept. Duck-typed over rclpy and ``rosbags`` messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seg_ros.core.errors import InputError


def scale_factors(info: Any, height: int, width: int) -> tuple[float, float]:
    """(sy, sx) that map ``info``'s pixel coordinates to an image of (height, width); (1, 1) when unknown.

    A camera_info with a zero width or height (uncalibrated drivers send that) has no size to scale from.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"cannot describe an empty output image ({width}x{height}) with camera_info.")
    ih, iw = int(info.height), int(info.width)
    if ih <= 0 or iw <= 0:
        return 1.0, 1.0
    return height / ih, width / iw


def scale_camera_info(info: Any, height: int, width: int, header: Any = None) -> Any:
    """A new CameraInfo of ``type(info)`` for an image of (height, width), with ``header`` (default: info's).

    K and P are 3×3 and 3×4 row-major float64 arrays (9 and 12 values); their scaled copies are float64
    numpy arrays, which both rclpy and ``rosbags`` accept.
    """
    sy, sx = scale_factors(info, height, width)
    k = np.array(info.k, dtype=np.float64).reshape(9)
    p = np.array(info.p, dtype=np.float64).reshape(12)
    if (sy, sx) != (1.0, 1.0):
        k[[0, 2]] *= sx
        k[[4, 5]] *= sy
        p[[0, 2, 3]] *= sx
        p[[5, 6]] *= sy
    roi = info.roi
    roi_out = type(roi)(
        x_offset=int(round(roi.x_offset * sx)), y_offset=int(round(roi.y_offset * sy)),
        height=int(round(roi.height * sy)), width=int(round(roi.width * sx)), do_rectify=bool(roi.do_rectify),
    )
    return type(info)(
        header=info.header if header is None else header,
        height=int(height), width=int(width),
        distortion_model=info.distortion_model,
        d=info.d, k=k, r=np.array(info.r, dtype=np.float64).reshape(9), p=p,
        binning_x=int(info.binning_x), binning_y=int(info.binning_y),
        roi=roi_out,
    )
