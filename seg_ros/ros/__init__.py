"""ROS 2 front end. Only ``node.py`` imports rclpy; the other modules here are pure and tested without ROS."""
