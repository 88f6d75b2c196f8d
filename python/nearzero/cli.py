"""The `nearzero` command: `nearzero demo` (the main job) and `nearzero bench`."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .demo import DEFAULT_STEPS


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default to its help, except for flags, options whose default is
    None (their help says what that means) and help that already states the default."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nearzero", description=__doc__,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small CNN that develops dead units and explain it",
                          formatter_class=_HelpFormatter)
    demo.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    demo.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps")
    demo.add_argument("--out", default="nearzero-report", help="folder for the plots")
    bench = sub.add_parser("bench", help="time the fused ops against plain ops and the reference",
                           formatter_class=_HelpFormatter)
    bench.add_argument("--device", default=None, help="cpu, cuda or all available (default)")
    bench.add_argument("--json", default=None, help="also write the results to this JSON file")
    bench.add_argument("--quick", action="store_true", help="smaller problem sizes")
    bench.add_argument("--repeats", type=int, default=None,
                       help="interleaved timing rounds (default: 3 with --quick, else 7)")
    bench.add_argument("--ops", default=None,
                       help="comma-separated ops to time, e.g. matmul_classify (default: all)")
    bench.add_argument("--distributed", action="store_true",
                       help="under torchrun: every process times its own device, rank 0 "
                            "prints a row per rank and host and writes the JSON")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(device=args.device, steps=args.steps, out=args.out)
    from .bench import run_bench

    return run_bench(device=args.device, json_path=args.json, quick=args.quick,
                     repeats=args.repeats, ops=args.ops.split(",") if args.ops else None,
                     distributed=args.distributed)


if __name__ == "__main__":
    sys.exit(main())
