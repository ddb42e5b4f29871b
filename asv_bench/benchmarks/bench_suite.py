"""The suite of docs/benchmarks.md (forward), its batch-1 rows, and one case per other public function.

Classes: Suite/Batch1/Functions (time, peak memory incl. the NumPy baseline, GFLOP/s, % of peak),
*Planned (plan_conv* reuse), *Torch (torch time / cconv time) and *Ort (ONNX Runtime time /
cconv time), each over
(case, dtype, layout, threads). float64 only for the suite itself (docs/benchmarks.md measures it
there); the other tables stay float32 to keep a full run short.
"""
from . import common

globals().update(common.benchmark_classes("Suite", common.cases.SUITE))
globals().update(common.benchmark_classes("Batch1", common.cases.BATCH1, dtypes=["float32"]))
globals().update(common.benchmark_classes("Functions", common.cases.FUNCTIONS, dtypes=["float32"]))
