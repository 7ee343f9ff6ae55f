"""Data in and out, without ROS: sensor_msgs images ↔ numpy (:mod:`~seg_ros.io.messages`), rosbag2 reading and
writing (:mod:`~seg_ros.io.bags`), datasets and image folders (:mod:`~seg_ros.io.datasets`).

Nothing here imports rclpy or any seg_ros layer above this one (runtime, pipeline, ros, tools, cli).
"""
