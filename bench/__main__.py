"""`python -m bench`: the comparative suite, then the table and charts in docs/.

Starts its own broker process with a fresh data directory, uses Redis (127.0.0.1:6379) and NATS JetStream
(127.0.0.1:4222) when they answer, and rewrites the "Comparative suite" section of docs/benchmarks.md and the
charts in docs/img/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.suite import SCALES, Suite, headline, render_section, write_charts, write_headline, write_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
WORKLOADS = ("1", "2", "3", "4", "5", "6", "7", "profile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="full",
        help="workload sizes: full (make bench, < 15 min) or smoke (seconds)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated workloads to run: 1 to 7 and/or profile (default all)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the broker")
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS,
        help="markdown file whose 'Comparative suite' section is rewritten",
    )
    parser.add_argument(
        "--images", type=Path, default=ROOT / "docs" / "img", help="directory for the PNG charts"
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="file whose bench-headline markers get the measured ratios (default: README.md when --docs is "
        "the default; nothing happens to a file without the markers)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    args = parser.parse_args(argv)
    only = {part.strip() for part in args.only.split(",") if part.strip()} or None
    if only is not None and not only <= set(WORKLOADS):
        parser.error(f"--only takes workload numbers among {', '.join(WORKLOADS)}")

    scale = SCALES[args.scale]
    suite = Suite(
        scale, redis_url=args.redis_url, nats_url=args.nats_url, only=only, profile=not args.no_profile
    )
    results = suite.run()
    charts = write_charts(results, args.images)
    image_prefix = (
        Path.relative_to(args.images.resolve(), args.docs.resolve().parent).as_posix() + "/"
        if args.images.resolve().is_relative_to(args.docs.resolve().parent)
        else f"{args.images.resolve()}/"
    )
    section = render_section(results, scale, charts, image_prefix=image_prefix)
    write_section(args.docs, section)
    readme = args.readme
    if readme is None and args.docs == DOCS:
        readme = ROOT / "README.md"
    if readme is not None and write_headline(readme, headline(results)):
        print(f"updated the headline in {readme}")
    print(f"\nwrote {args.docs} and {len(charts)} chart(s) in {args.images} ({results.elapsed_s:.0f} s)")
    for verdict in results.verdicts():
        shown = "not measured" if verdict.value is None else f"{verdict.value:.2f}"
        state = "-" if verdict.met is None else "met" if verdict.met else "MISSED"
        print(f"  {verdict.target.name}: {shown} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
