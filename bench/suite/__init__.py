"""The comparative benchmark suite: tidelog side by side with Redis Streams and NATS JetStream.

`python -m bench` (or `make bench`) runs it; see docs/benchmarks.md, "Comparative suite".
"""

from ._model import Figure, Results, Summary, Target, Verdict, percentile
from ._report import headline, render_section, write_charts, write_headline, write_section
from ._scale import FULL, SCALES, SMOKE, Scale
from ._suite import Suite

__all__ = [
    "FULL",
    "SCALES",
    "SMOKE",
    "Figure",
    "Results",
    "Scale",
    "Suite",
    "Summary",
    "Target",
    "Verdict",
    "headline",
    "percentile",
    "render_section",
    "write_charts",
    "write_headline",
    "write_section",
]
