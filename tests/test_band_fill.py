"""The GEMM engine's channels-first band fill (NCHW rows transposed into the channels-last band,
8x8 register blocks in the interior, fewer than 8 channels packed with whole-vector stores,
element by element at the borders) against the channels-last fill: both layouts run the same
tiles in the same order, so their outputs are bitwise equal. Channel counts and widths straddle
the 8x8 blocks (21: several blocks, the last stores exact); every padding mode moves the borders."""
import numpy as np
import pytest

from helpers import use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")


# reflect padding needs pad < width, and a 3-wide kernel needs width + pads >= 3: no reflect at 1
MODE_WIDTHS = [(mode, width) for mode in ("zeros", "reflect", "circular")
               for width in (1, 3, 4, 5, 9, 13, 21) if (mode, width) != ("reflect", 1)]


@pytest.mark.parametrize("c_in", [1, 3, 4, 5, 8, 17, 20])
@pytest.mark.parametrize("mode,width", MODE_WIDTHS)
@pytest.mark.parametrize("algorithm", ["gemm", "winograd"])
def test_nchw_fill_matches_nhwc(c_in, width, mode, algorithm, isa):
    rng = np.random.default_rng(c_in * 100 + width)
    pad = (1, {"reflect": min(2, width - 1), "circular": min(2, width)}.get(mode, 2))
    x = rng.standard_normal((2, c_in, 5, width)).astype(np.float32)
    w = rng.standard_normal((6, c_in, 3, 3)).astype(np.float32)
    kw = dict(padding=pad, padding_mode=mode, algorithm=algorithm)
    with use_isa(isa):
        y_cf = cconv.conv2d(x, w, **kw)
        y_cl = cconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, layout="NHWC", **kw)
    np.testing.assert_array_equal(y_cf, y_cl.transpose(0, 3, 1, 2))
