"""Benchmarks of cconv: `python -m cconv.bench` (the comparison report, cconv.bench.run), the case
tables it shares with the asv suite in asv_bench/ (cconv.bench.cases) and the machine's measured
limits behind "% of peak" (cconv.bench.machine)."""
from .run import main

__all__ = ["main"]
