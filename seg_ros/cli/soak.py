"""``seg-ros soak``: the node's ROS-free core under frames faster than the pipeline, with live changes."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="soak the node's ROS-free core: frames faster than the pipeline, live changes")
    p.add_argument("--frames", type=a.number(int, 1), default=20000)
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--size", type=a.resolution, default=(96, 128), help="frame size HxW (default: 96x128)")
    p.add_argument("--interval-ms", type=a.number(float, 0.0), default=4.0,
                   help="time between submitted frames (default: 4)")
    p.add_argument("--change-every", type=a.number(int, 1), default=40,
                   help="frames between parameter changes (default: 40)")
    p.add_argument("--device", default="auto", help=a.AUTO_DEVICE_HELP)
    p.add_argument("--json", default="soak.json", help="where to write the JSON report")
    p.add_argument("--flood", nargs=argparse.REMAINDER, default=None, metavar="FLOOD_ARGS",
                   help="instead: flood a real segmentation_node process (or a plain subscriber) over ROS 2 and "
                        "watch its memory; the rest of the line goes to the flood (seg-ros soak --flood --help)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int | None:
    if args.flood is not None:
        from seg_ros.ros.tools.flood import main as flood

        return flood(args.flood)
    from seg_ros.core.paths import check_output_file
    from seg_ros.pipeline import format_resolution
    from seg_ros.tools.reports import MachineHeader, write_report
    from seg_ros.tools.soak import format_report, run_soak

    check_output_file(args.json, "--json")
    res = format_resolution(args.size)
    report = run_soak(args.frames, model=args.model, size=args.size, resolutions=(res, "64x96"),
                      interval_s=args.interval_ms / 1000.0, change_every=args.change_every, device=args.device,
                      progress=lambda i, r: print(f"frame {i}: {r.processed} processed, {r.dropped} dropped, "
                                                  f"rss {r.rss_samples_mb[-1][1]:.1f} MB", flush=True))
    print(format_report(report))
    where = vars(MachineHeader.here())  # a soak's report says where and when it ran, as the benchmarks' do
    print(f"wrote {write_report({**where, **report.to_json()}, args.json, a.command_line(args))}")
    if not report.ok:
        raise SegRosError(f"soak found {len(report.problems)} problem(s); see {args.json}.")
    return None
