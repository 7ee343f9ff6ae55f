"""The bottom layer: errors, size limits, paths, label sets, metrics, staging, verified caches, settings."""
