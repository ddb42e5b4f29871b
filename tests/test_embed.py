"""Embedding: compile a small external Cython extension against the installed
cconv (``cconv.get_include()`` + the shipped ``.pxd`` files), call the C API
through it without the GIL, and compare with ``cconv.conv2d`` and ``cconv.grad``."""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import reference as R

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
import cconv.grad  # noqa: E402  (after the importorskip above)
pytest.importorskip("Cython", reason="Cython is needed to build the embedding test extension")

EXT_SOURCE = textwrap.dedent(
    """
    # cython: language_level=3, boundscheck=False, wraparound=False
    import numpy as np
    from libc.stdint cimport int64_t
    from libc.string cimport memset
    from cconv.ccore cimport (CCONV_ACT_CLAMP, CCONV_ACT_NONE)
    from cconv.ccore cimport (cconv_conv_desc, cconv_status, cconv_plan, CCONV_OK, CCONV_FLOAT64,
                              CCONV_FLOAT32, CCONV_PAD_ZEROS, CCONV_ALGO_AUTO)
    from cconv.ccore cimport (CCONV_PAD_REFLECT, CCONV_PAD_REPLICATE, CCONV_PAD_CIRCULAR,
                              CCONV_PAD_SYMMETRIC, CCONV_ERR_INVALID)
    from cconv._core cimport (conv, conv_output_size, plan_create, plan_execute, plan_destroy,
                              input_grad)

    cdef void fill_desc(cconv_conv_desc *d, int dtype, int64_t n, int64_t cin, int64_t h, int64_t w,
                        int64_t cout, int64_t kh, int64_t kw, int64_t stride, int64_t pad) noexcept nogil:
        cdef int a
        memset(d, 0, sizeof(d[0]))  # as the header asks: fields it adds later read as defaults
        d.dtype = CCONV_FLOAT64 if dtype == 64 else CCONV_FLOAT32
        d.transposed = 0
        d.channels_last = 0
        d.padding_mode = CCONV_PAD_ZEROS
        d.algorithm = CCONV_ALGO_AUTO
        d.batch = n
        d.in_channels = cin
        d.out_channels = cout
        d.groups = 1
        for a in range(3):
            d.stride[a] = 1
            d.dilation[a] = 1
            d.pad_before[a] = 0
            d.pad_after[a] = 0
            d.output_padding[a] = 0
            d.out_size[a] = 0
        d.in_size[0] = 1
        d.in_size[1] = h
        d.in_size[2] = w
        d.kernel[0] = 1
        d.kernel[1] = kh
        d.kernel[2] = kw
        for a in range(1, 3):
            d.stride[a] = stride
            d.pad_before[a] = pad
            d.pad_after[a] = pad

    def conv2d_f64(double[:, :, :, ::1] x, double[:, :, :, ::1] w, double[::1] b, int stride, int pad,
                   act=None):
        # act: None, or (min, max) bounds of the fused activation
        cdef cconv_conv_desc d
        cdef cconv_status st
        fill_desc(&d, 64, x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2],
                  w.shape[3], stride, pad)
        if act is not None:
            d.activation = CCONV_ACT_CLAMP
            d.act_min, d.act_max = act
        with nogil:
            st = conv_output_size(&d)
        if st != CCONV_OK:
            raise ValueError(f"cconv status {int(st)}")
        y = np.empty((x.shape[0], w.shape[0], d.out_size[1], d.out_size[2]), dtype=np.float64)
        cdef double[:, :, :, ::1] yv = y
        cdef const void *bp = NULL
        if b is not None:
            bp = &b[0]
        with nogil:
            st = conv(&d, &x[0, 0, 0, 0], &w[0, 0, 0, 0], bp, &yv[0, 0, 0, 0])
        if st != CCONV_OK:
            raise ValueError(f"cconv status {int(st)}")
        return y

    def conv2d_f32_plan(float[:, :, :, ::1] x, float[:, :, :, ::1] w, int stride, int pad, int repeats):
        cdef cconv_conv_desc d
        cdef cconv_status st
        cdef cconv_plan *plan = NULL
        cdef int r
        fill_desc(&d, 32, x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2],
                  w.shape[3], stride, pad)
        with nogil:
            st = plan_create(&d, &w[0, 0, 0, 0], NULL, &plan)
        if st != CCONV_OK:
            raise ValueError(f"cconv status {int(st)}")
        try:
            conv_output_size(&d)
            y = np.empty((x.shape[0], w.shape[0], d.out_size[1], d.out_size[2]), dtype=np.float32)
            ys = []
            for r in range(repeats):
                out = np.empty_like(y)
                _execute(plan, x, out)
                ys.append(out)
            return ys
        finally:
            plan_destroy(plan)

    cdef _execute(cconv_plan *plan, float[:, :, :, ::1] x, float[:, :, :, ::1] y):
        cdef cconv_status st
        with nogil:
            st = plan_execute(plan, &x[0, 0, 0, 0], &y[0, 0, 0, 0])
        if st != CCONV_OK:
            raise ValueError(f"cconv status {int(st)}")

    MODES = {"zeros": CCONV_PAD_ZEROS, "reflect": CCONV_PAD_REFLECT, "replicate": CCONV_PAD_REPLICATE,
             "circular": CCONV_PAD_CIRCULAR, "symmetric": CCONV_PAD_SYMMETRIC}

    def conv2d_input_grad_f64(tuple x_shape, double[:, :, :, ::1] w, double[:, :, :, ::1] g,
                              int stride, int pad, int groups, str mode):
        # dL/dx of conv2d(x, w, stride, pad, groups, padding_mode=mode), channels-first
        cdef cconv_conv_desc d
        cdef cconv_status st
        fill_desc(&d, 64, x_shape[0], x_shape[1], x_shape[2], x_shape[3], w.shape[0], w.shape[2],
                  w.shape[3], stride, pad)
        d.groups = groups
        d.padding_mode = MODES[mode]
        gx = np.empty(x_shape, dtype=np.float64)
        cdef double[:, :, :, ::1] gv = gx
        with nogil:
            st = input_grad(&d, &g[0, 0, 0, 0], &w[0, 0, 0, 0], &gv[0, 0, 0, 0])
        if st != CCONV_OK:
            raise ValueError(f"cconv status {int(st)}")
        return gx

    def input_grad_null_status():
        cdef cconv_conv_desc d
        cdef double v = 0
        fill_desc(&d, 64, 1, 1, 5, 5, 1, 3, 3, 1, 0)
        with nogil:
            st = input_grad(&d, NULL, &v, &v)
        return int(st) == CCONV_ERR_INVALID

    def bad_stride_status():
        cdef cconv_conv_desc d
        fill_desc(&d, 64, 1, 1, 5, 5, 1, 3, 3, 0, 0)
        cdef cconv_status st = conv_output_size(&d)
        return int(st)
    """
)

SETUP = textwrap.dedent(
    """
    import sys
    from setuptools import setup, Extension
    from Cython.Build import cythonize
    include_dir, pkg_parent = sys.argv.pop(1), sys.argv.pop(1)
    ext = Extension("cconv_embed_demo", ["cconv_embed_demo.pyx"], include_dirs=[include_dir])
    setup(name="cconv_embed_demo",
          ext_modules=cythonize([ext], include_path=[pkg_parent], language_level=3, quiet=True))
    """
)


def _have_compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not _have_compiler():
        pytest.skip("no C compiler available to build the embedding extension")
    inc = cconv.get_include()
    assert os.path.isfile(os.path.join(inc, "cconv.h")), f"cconv.h not in get_include() = {inc}"
    pkg_dir = os.path.dirname(cconv.__file__)
    for pxd in ("ccore.pxd", "_core.pxd"):
        assert os.path.isfile(os.path.join(pkg_dir, pxd)), f"{pxd} not shipped in {pkg_dir}"
    d = tmp_path_factory.mktemp("embed")
    (d / "cconv_embed_demo.pyx").write_text(EXT_SOURCE)
    (d / "setup.py").write_text(SETUP)
    proc = subprocess.run(
        [sys.executable, "setup.py", inc, os.path.dirname(pkg_dir), "build_ext", "--inplace"],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"building the embedding extension failed:\n{proc.stdout}\n{proc.stderr}"
    built = [f for f in os.listdir(d) if f.startswith("cconv_embed_demo") and f.endswith((".so", ".pyd"))]
    assert built, os.listdir(d)
    spec = importlib.util.spec_from_file_location("cconv_embed_demo", d / built[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_header_is_plain_c():
    with open(os.path.join(cconv.get_include(), "cconv.h")) as f:
        text = f.read()
    assert "Python.h" not in text and "numpy" not in text.lower().replace("no python or numpy", "")
    for name in ("cconv_conv_desc", "cconv_conv", "cconv_plan_create", "cconv_status_string"):
        assert name in text


def test_header_compiles_as_c_and_cpp(tmp_path):
    if not _have_compiler():
        pytest.skip("no C compiler")
    src = tmp_path / "use.c"
    src.write_text('#include "cconv.h"\nint f(void) { cconv_conv_desc d; d.batch = 1; return (int)d.batch; }\n')
    for cc, extra in (("cc", ["-std=c99"]), ("c++", ["-x", "c++"])):
        if shutil.which(cc) is None:
            continue
        p = subprocess.run([cc, *extra, "-Wall", "-Werror", "-c", str(src), "-I", cconv.get_include(),
                            "-o", str(tmp_path / "use.o")], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_embedded_conv_matches_python_api(demo, stride, pad):
    rng = np.random.default_rng(stride * 10 + pad)
    x = rng.standard_normal((2, 5, 11, 9))
    w = rng.standard_normal((7, 5, 3, 2))
    b = rng.standard_normal(7)
    y = demo.conv2d_f64(x, w, b, stride, pad)
    expected = cconv.conv2d(x, w, b, stride=stride, padding=pad)
    np.testing.assert_array_equal(y, expected)
    R.assert_conv_close(y, R.conv2d(x, w, b, stride, pad), R.magnitude(R.conv2d, x, w, b, stride=stride,
                                                                          padding=pad), np.float64, 30)
    y0 = demo.conv2d_f64(x, w, None, stride, pad)
    np.testing.assert_array_equal(y0, cconv.conv2d(x, w, stride=stride, padding=pad))


@pytest.mark.parametrize("act,name", [((0.0, np.inf), "relu"), ((0.0, 6.0), "relu6"),
                                      ((-0.5, 0.25), (-0.5, 0.25))])
def test_embedded_activation(demo, act, name):
    rng = np.random.default_rng(3)
    x = 3 * rng.standard_normal((2, 5, 11, 9))
    w = rng.standard_normal((7, 5, 3, 2))
    b = rng.standard_normal(7)
    y = demo.conv2d_f64(x, w, b, 1, 1, act)
    np.testing.assert_array_equal(y, cconv.conv2d(x, w, b, padding=1, activation=name))
    np.testing.assert_array_equal(y, np.clip(demo.conv2d_f64(x, w, b, 1, 1), *act))
    assert (y == act[0]).any()  # the clamp did act
    with pytest.raises(ValueError, match="status 1"):  # NaN bounds: CCONV_ERR_INVALID
        demo.conv2d_f64(x, w, b, 1, 1, (np.nan, 1.0))


def test_embedded_plan_reuse(demo):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    ys = demo.conv2d_f32_plan(x, w, 1, 1, 3)
    expected = R.conv2d(x, w, None, 1, 1)
    scale = R.magnitude(R.conv2d, x, w, stride=1, padding=1)
    for y in ys:
        R.assert_conv_close(y, expected, scale, np.float32, 16 * 9)
        np.testing.assert_array_equal(y, ys[0])


def test_embedded_error_status(demo):
    assert demo.bad_stride_status() != 0


@pytest.mark.parametrize("stride,pad,groups,mode", [
    (1, 1, 1, "zeros"),       # a 3x3 stride-1 layer: Winograd where auto picks it
    (2, 1, 1, "zeros"),
    (2, 2, 2, "reflect"),
    (1, 2, 1, "replicate"),
    (3, 1, 4, "circular"),    # depthwise (one input channel per group), channel multiplier 2
    (2, 1, 4, "symmetric"),
])
def test_embedded_input_grad(demo, stride, pad, groups, mode):
    rng = np.random.default_rng(stride * 100 + pad * 10 + groups)
    x_shape = (2, 4, 11, 9)
    w = rng.standard_normal((8, 4 // groups, 3, 3))
    y_shape = cconv.conv2d(np.zeros(x_shape), w, stride=stride, padding=pad, groups=groups,
                           padding_mode=mode).shape
    g = rng.standard_normal(y_shape)
    gx = demo.conv2d_input_grad_f64(x_shape, w, g, stride, pad, groups, mode)
    np.testing.assert_array_equal(gx, cconv.grad.conv2d_input(x_shape, w, g, stride=stride, padding=pad,
                                                              groups=groups, padding_mode=mode))
    expected = R.conv_nd_input_grad(x_shape, w, g, stride, pad, dilation=1, groups=groups,
                                    padding_mode=mode)
    np.testing.assert_allclose(gx, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_embedded_input_grad_null_status(demo):
    assert demo.input_grad_null_status()
