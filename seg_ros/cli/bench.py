"""``seg-ros bench speed|crf|node|cameras|bag|evaluate|soak|report``: the benchmarks, each with its own options.

``bench soak`` is ``seg-ros soak`` under the benchmarks' name.
"""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.cli import bench_crf, soak

DEVICES_HELP = "repeatable (default: auto = cpu, and cuda:0 when CUDA is available)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks: pipeline speed, the CRF, the node, cameras per node, bags, "
                                         "evaluate, soak",
                           description="Each benchmark prints its tables and writes a JSON report.")
    kinds = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    _add_speed(kinds)
    bench_crf.add_parser(kinds)
    _add_node(kinds)
    _add_cameras(kinds)
    _add_bag(kinds)
    _add_evaluate(kinds)
    soak.add_parser(kinds)
    p = kinds.add_parser("report", help="print the Markdown table docs/benchmarks.md shows for a speed report",
                         description="The table is what `python -m seg_ros.tools.benchdoc` writes into the docs.")
    p.add_argument("report", help="a JSON report of seg-ros bench speed")
    p.set_defaults(func=run_report)


def _add_common(p: argparse.ArgumentParser, frames: int = 30, warmup: bool = True) -> None:
    p.add_argument("--frames", type=a.number(int, 1), default=frames, help="timed frames (default: %(default)s)")
    if warmup:
        p.add_argument("--warmup", type=a.number(int, 0), default=5, help="untimed frames first (default: 5)")
    p.add_argument("--json", default="bench.json", help="where to write the JSON report (default: %(default)s)")


def _add_speed(kinds: argparse._SubParsersAction) -> None:
    from seg_ros.runtime import BACKENDS, PRECISIONS

    p = kinds.add_parser("speed", help="bare-network and end-to-end speed of every backend and of auto, beside a naive "
                                       "baseline around the fastest runtime")
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--resolution", type=a.resolution, action="append",
                   help="HxW, repeatable (default: 360x640, 512x1024 and 1024x2048)")
    p.add_argument("--device", action="append", help=DEVICES_HELP)
    p.add_argument("--precision", action="append", choices=PRECISIONS,
                   help="repeatable (default: all, where the backend and device can run them)")
    p.add_argument("--backend", action="append", choices=tuple(BACKENDS),
                   help="repeatable (default: every backend available here)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="leave out the naive baseline")
    p.add_argument("--accuracy-frames", type=a.number(int, 0), default=8,
                   help="synthetic scenes with exact labels for the mIoU column (default: 8)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a.add_accel_args(p)
    _add_common(p)
    p.set_defaults(func=run_speed)


def _add_node(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("node", help="the ROS node's overhead: message decoding and building vs the pipeline")
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--resolution", type=a.resolution, action="append", help="HxW, repeatable (default: 360x640)")
    p.add_argument("--device", action="append", help=DEVICES_HELP)
    _add_common(p)
    p.set_defaults(func=run_node)


def _add_cameras(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("cameras", help="several cameras in one node vs one node per camera: memory and throughput "
                                         "(real node processes over ROS 2)")
    p.add_argument("--cameras", type=a.number(int, 1, 16), nargs="+", default=[1, 2, 4],
                   help="camera counts to compare (default: 1 2 4)")
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--resolution", type=a.resolution, default=(360, 640),
                   help="HxW of the frames and of inference (default: 360x640)")
    p.add_argument("--rate", type=a.number(float, 0.0, 1000.0, low_open=True), default=30.0,
                   help="frames per second published on each camera topic (default: %(default)g)")
    p.add_argument("--seconds", type=a.number(float, 0.0, 3600.0, low_open=True), default=20.0,
                   help="measured seconds per layout and camera count (default: %(default)g)")
    p.add_argument("--warmup", type=a.number(float, 0.0, 600.0), default=5.0,
                   help="least seconds of frames before the measurement (default: %(default)g)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda:N (default: cpu)")
    p.add_argument("--json", default="camera_bench.json", help="where to write the JSON report (default: %(default)s)")
    p.set_defaults(func=run_cameras)


def _add_bag(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("bag", help="bag reading speed: raw rgb8 frames, sqlite3 and mcap")
    p.add_argument("--resolution", type=a.resolution, default=(360, 640), help="HxW (default: 360x640)")
    _add_common(p, frames=500, warmup=False)
    p.set_defaults(func=run_bag)


def _add_evaluate(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("evaluate", help="seg-ros evaluate's own overhead on a synthetic drive")
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--resolution", type=a.resolution, default=(360, 640), help="HxW (default: 360x640)")
    p.add_argument("--device", default="auto", help=a.AUTO_DEVICE_HELP)
    _add_common(p, warmup=False)
    p.set_defaults(func=run_evaluate)


def run_speed(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file
    from seg_ros.tools.bench import RESOLUTIONS, bench_devices, format_table, run_bench
    from seg_ros.tools.doctables import interleaved_table, speed_targets
    from seg_ros.tools.reports import write_report

    check_output_file(args.json, "--json")
    report = run_bench(args.model, args.resolution or RESOLUTIONS, bench_devices(args.device), args.frames,
                       args.warmup, args.precision, args.backend, naive=args.naive,
                       accuracy_frames=args.accuracy_frames, runtime=a.runtime_options(args),
                       progress=a.progress_printer(args.quiet))
    print(report.versions_line())
    print(format_table(report))
    for part in (interleaved_table(report), *speed_targets(report)):
        if part:
            print(part)
    for skipped in report.skipped:
        print(skipped.line())
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")


def run_node(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file
    from seg_ros.ros.tools.nodebench import format_node_table, run_node_bench
    from seg_ros.tools.bench import bench_devices
    from seg_ros.tools.reports import write_report

    check_output_file(args.json, "--json")
    report = run_node_bench(args.model, args.resolution or [(360, 640)], bench_devices(args.device), args.frames,
                            args.warmup)
    print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
    print(format_node_table(report))
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")


def run_cameras(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file
    from seg_ros.ros.tools.camerabench import run_camera_bench
    from seg_ros.ros.tools.camerabench_report import format_camera_tables
    from seg_ros.tools.reports import write_report

    check_output_file(args.json, "--json")
    report = run_camera_bench(sorted(set(args.cameras)), model=args.model, resolution=args.resolution,
                              rate_hz=args.rate, seconds=args.seconds, warmup_s=args.warmup, device=args.device,
                              progress=a.progress_printer(False))
    print(f"{report.machine}, {', '.join(f'{k} {v}' for k, v in report.versions.items())}, {report.date}")
    print(format_camera_tables(report))
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")


def run_bag(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file
    from seg_ros.tools.bagbench import BagBenchReport, bench_bag_read, format_bag_table
    from seg_ros.tools.reports import MachineHeader, write_report

    check_output_file(args.json, "--json")
    header = MachineHeader.here()
    print(header.line())
    report = BagBenchReport(header, bench_bag_read(args.frames, args.resolution))
    print(format_bag_table(report.bag_read))
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")


def run_evaluate(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file
    from seg_ros.tools.bagbench import EvaluateBenchReport, bench_evaluate, format_evaluate_table
    from seg_ros.tools.reports import MachineHeader, write_report

    check_output_file(args.json, "--json")
    header = MachineHeader.here()
    print(header.line())
    report = EvaluateBenchReport(header, bench_evaluate(args.model, args.frames, args.resolution, args.device))
    print(format_evaluate_table(report.evaluate))
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")


def run_report(args: argparse.Namespace) -> None:
    from seg_ros.tools.benchdoc import doc_table, load_report

    print(doc_table(load_report(args.report)))
