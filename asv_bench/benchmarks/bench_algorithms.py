"""The same 3x3 stride-1 convolutions (2-D, dilated, 3-D) through each algorithm that can run them
("gemm": the direct register-tiled engine, "winograd": F(4x4, 3x3)), planned once: what "auto"
gains by choosing, and whether its choice rule (the implementation list, src/cconv/_c/core/plan.c) still holds on this
machine."""
import numpy as np

from . import common

# (name, x shape channels-first, C_out, dilation): the suite's dense case, its batch-1 row,
# ResNet-50 stages, the suite's dilated d2 and (a smaller) conv3d 3x3x3.
SHAPES = {
    "dense_n8_64_56": ((8, 64, 56, 56), 64, 1),
    "dense_n1_64_56": ((1, 64, 56, 56), 64, 1),
    "resnet_l2_n8_128_28": ((8, 128, 28, 28), 128, 1),
    "resnet_l3_n1_256_14": ((1, 256, 14, 14), 256, 1),
    "dilated_d2_n4_128_64": ((4, 128, 64, 64), 128, 2),
    "conv3d_n1_32_8x28": ((1, 32, 8, 28, 28), 32, 1),
}


class Algorithms:
    param_names = ["shape", "algorithm", "layout", "threads"]
    params = [list(SHAPES), ["gemm", "winograd"], common.LAYOUTS, common.THREADS]
    rounds = 1
    repeat = (1, 5, 4.0)
    warmup_time = 0.05
    timeout = 300

    def setup(self, shape, algorithm, layout, threads):
        import cconv
        common.set_threads(cconv, threads)
        xs, co, dil = SHAPES[shape]
        rng = np.random.default_rng(0)
        x = rng.random(xs, dtype=np.float32)
        w = rng.random((co, xs[1]) + (3,) * (len(xs) - 2), dtype=np.float32)
        cl = common.cases.is_channels_last(layout)
        if cl:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        plan = cconv.plan_conv3d if len(xs) == 5 else cconv.plan_conv2d
        lay = ("NDHWC" if cl else "NCDHW") if len(xs) == 5 else ("NHWC" if cl else "NCHW")
        self.plan = plan(x.shape, w, padding=dil, dilation=dil, algorithm=algorithm, layout=lay)
        self.x = x
        self.plan(x)

    def time_planned(self, *params):
        self.plan(self.x)
