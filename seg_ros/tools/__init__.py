"""Offline tools behind the ``seg-ros`` subcommands: benchmarks, CRF tuning, the demo, the soak, the segment command."""
