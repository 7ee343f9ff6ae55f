"""camera_info for the outputs, on the real CameraInfo definition (rosbags) with CDR round trips."""

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from seg_ros.core.errors import InputError
from seg_ros.ros.camera_info import scale_camera_info, scale_factors

TS = get_typestore(Stores.ROS2_KILTED)
CameraInfo = TS.types["sensor_msgs/msg/CameraInfo"]
Roi = TS.types["sensor_msgs/msg/RegionOfInterest"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]

K = np.array([800.0, 0.0, 640.0, 0.0, 820.0, 360.0, 0.0, 0.0, 1.0])
P = np.array([800.0, 0.0, 640.0, -40.0, 0.0, 820.0, 360.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def _info(h=720, w=1280, roi=(0, 0, 0, 0)):
    msg = CameraInfo(header=Header(stamp=Time(sec=1, nanosec=0), frame_id="cam_info_frame"), height=h, width=w,
                     distortion_model="plumb_bob", d=np.array([0.1, -0.05, 0.001, 0.002, 0.0]), k=K.copy(),
                     r=np.eye(3).reshape(9), p=P.copy(), binning_x=0, binning_y=0,
                     roi=Roi(x_offset=roi[0], y_offset=roi[1], height=roi[2], width=roi[3], do_rectify=False))
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _rt(msg):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def test_same_size_keeps_the_calibration_and_takes_the_image_header():
    hdr = Header(stamp=Time(sec=42, nanosec=7), frame_id="camera_optical")
    out = _rt(scale_camera_info(_info(), 720, 1280, hdr))
    assert out.header.stamp.sec == 42 and out.header.frame_id == "camera_optical"
    assert (out.height, out.width) == (720, 1280)
    assert np.array_equal(out.k, K) and np.array_equal(out.p, P) and out.distortion_model == "plumb_bob"
    assert np.array_equal(out.d, [0.1, -0.05, 0.001, 0.002, 0.0])


def test_half_size_scales_intrinsics_projection_and_roi():
    out = _rt(scale_camera_info(_info(roi=(100, 50, 400, 600)), 360, 640))
    assert (out.height, out.width) == (360, 640) and out.header.frame_id == "cam_info_frame"
    assert np.allclose(out.k, [400, 0, 320, 0, 410, 180, 0, 0, 1])
    assert np.allclose(out.p, [400, 0, 320, -20, 0, 410, 180, 0, 0, 0, 1, 0])
    assert (out.roi.x_offset, out.roi.y_offset, out.roi.height, out.roi.width) == (50, 25, 200, 300)
    assert np.array_equal(out.r, np.eye(3).reshape(9))
    # A 3-D point projects to the same place, scaled: u' = sx * u, v' = sy * v.
    X = np.array([0.3, -0.2, 4.0, 1.0])
    uvw = P.reshape(3, 4) @ X
    uvw2 = np.asarray(out.p).reshape(3, 4) @ X
    assert np.allclose(uvw2[:2] / uvw2[2], uvw[:2] / uvw[2] * [640 / 1280, 360 / 720])


def test_anisotropic_scaling():
    sy, sx = scale_factors(_info(), 480, 640)
    assert (sy, sx) == (480 / 720, 0.5)
    out = scale_camera_info(_info(), 480, 640)
    assert out.k[0] == pytest.approx(400) and out.k[4] == pytest.approx(820 * 480 / 720)


def test_uncalibrated_camera_info_is_passed_on_with_the_output_size():
    info = _info(h=0, w=0)
    out = scale_camera_info(info, 96, 128)
    assert (out.height, out.width) == (96, 128) and np.array_equal(out.k, K)


def test_empty_output_is_refused():
    with pytest.raises(InputError, match="empty output image"):
        scale_camera_info(_info(), 0, 0)
