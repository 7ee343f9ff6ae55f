"""Tools that talk to rclpy: the node benchmark and the flood publishers (not loaded by the node)."""
