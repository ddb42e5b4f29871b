"""Gradients (cconv.grad: input and weight gradients of every variant, timed together) on the
suite's shapes and on network layers; torch's reference is aten.convolution_backward (autograd
for the composites)."""
from . import common

globals().update(common.benchmark_classes("Grad", common.cases.GRAD, dtypes=["float32"]))
globals().update(common.benchmark_classes("GradLayers", common.cases.NETWORK_GRADS, dtypes=["float32"]))
