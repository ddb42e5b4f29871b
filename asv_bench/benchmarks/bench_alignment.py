"""channel_shuffle of a (4, 96, 48, 48) float32 array (3.5 MB) with its output 16 bytes past the
input modulo 4096 (where a forward copy's loads can be taken as dependent on its own recent
stores: 4K aliasing) and 2048 bytes past it (as far as it gets), both layouts. The arrays are
views of one buffer each, so that only the offset differs (python -m cconv.bench.alignment has
the full table and the other memory-bound kernels).

time_channel_shuffle:  one call into the preallocated output at that offset
track_alias_ratio:     time at 16 / time at 2048, interleaved in one process (1.0: no
                       dependence on the placement)
"""
from . import common

alignment = common._load("alignment")

SHAPES = {"NCHW": (4, 96, 48, 48), "NHWC": (4, 48, 48, 96)}
GROUPS = 4


class ShuffleAlignment:
    param_names = ["layout", "offset", "threads"]
    params = [list(SHAPES), [16, 2048], common.THREADS]
    repeat = (1, 5, 4.0)
    sample_time = 0.02
    timeout = 120

    def setup(self, layout, offset, threads):
        import cconv
        import numpy as np
        common.set_threads(cconv, threads)
        shape = SHAPES[layout]
        nbytes = int(np.prod(shape)) * 4
        self.bufs = [alignment.page_buffer(nbytes) for _ in range(2)]
        self.x = x = alignment.at_offset(self.bufs[0], shape, 0)
        x[...] = np.random.default_rng(0).standard_normal(shape, np.float32)
        self.ys = {o: alignment.at_offset(self.bufs[1], shape, o) for o in (16, 2048)}
        self.fns = {o: (lambda y=y: cconv.channel_shuffle(x, GROUPS, layout=layout, out=y))
                    for o, y in self.ys.items()}
        for f in self.fns.values():
            f()

    def time_channel_shuffle(self, layout, offset, threads):
        self.fns[offset]()

    def track_alias_ratio(self, layout, offset, threads):
        t16, t2048 = common.cases.time_interleaved([self.fns[16], self.fns[2048]], 15, 0.005)
        return t16 / t2048
    track_alias_ratio.unit = "time at 16 / time at 2048"
