/* A plain-C user of cconv's public API, built by tools/check_portability.sh against the C core
 * alone (no Python): for every available ISA and both dtypes it plans one convolution of each
 * algorithm family, checks the result against CCONV_ALGO_REFERENCE, checks that 1 and 3 threads
 * give the same bits, and checks the weight gradient through its adjoint identity
 * <grad_weight, v> = <grad_output, conv(x, v)>. With a file argument it also writes the generic
 * ISA's outputs there (as float64) so that runs on two machines can be compared.
 * Prints one line per failure and exits nonzero if there was any. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cconv.h"

typedef struct {
    const char *name;
    cconv_algorithm algo;
    int transposed, channels_last;
    int64_t N, Ci, Co, G, H, W, K, S, P, Dl;
} test_case;

static const test_case cases[] = {
    {"gemm 3x3", CCONV_ALGO_GEMM, 0, 0, 2, 8, 16, 1, 13, 11, 3, 1, 1, 1},
    {"gemm channels-last stride 2", CCONV_ALGO_GEMM, 0, 1, 2, 8, 12, 1, 12, 12, 3, 2, 1, 1},
    {"gemm dilated", CCONV_ALGO_GEMM, 0, 0, 1, 6, 10, 1, 14, 9, 3, 1, 2, 2},
    {"gemm 1x1", CCONV_ALGO_GEMM, 0, 0, 2, 32, 24, 1, 9, 9, 1, 1, 0, 1},
    {"depthwise 5x5", CCONV_ALGO_DEPTHWISE, 0, 0, 2, 16, 16, 16, 15, 15, 5, 1, 2, 1},
    {"depthwise channels-last stride 2", CCONV_ALGO_DEPTHWISE, 0, 1, 2, 12, 12, 12, 13, 13, 3, 2, 1, 1},
    {"grouped", CCONV_ALGO_GROUPED, 0, 0, 2, 16, 16, 4, 12, 12, 3, 1, 1, 1},
    {"winograd", CCONV_ALGO_WINOGRAD, 0, 0, 1, 8, 8, 1, 16, 16, 3, 1, 1, 1},
    {"winograd channels-last", CCONV_ALGO_WINOGRAD, 0, 1, 1, 8, 16, 1, 11, 13, 3, 1, 1, 1},
    {"transposed stride 2", CCONV_ALGO_AUTO, 1, 0, 2, 8, 6, 1, 7, 7, 4, 2, 1, 1},
    {"transposed channels-last", CCONV_ALGO_AUTO, 1, 1, 1, 6, 8, 2, 6, 5, 3, 2, 1, 1},
};
#define NCASES (sizeof cases / sizeof cases[0])

static uint64_t rng_state = 1;

static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1.0p-52 - 1.0;
}

static void *filled(size_t n, cconv_dtype dt)
{
    void *p = malloc(n * (dt == CCONV_FLOAT64 ? 8 : 4) + 1);
    if (!p) { fputs("out of memory\n", stderr); exit(2); }
    for (size_t i = 0; i < n; i++) {
        if (dt == CCONV_FLOAT64) ((double *)p)[i] = rnd();
        else ((float *)p)[i] = (float)rnd();
    }
    return p;
}

static double at(const void *p, size_t i, cconv_dtype dt)
{
    return dt == CCONV_FLOAT64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static int64_t count(const int64_t *a) { return a[0] * a[1] * a[2]; }

static int failures;

static void fail(const char *isa, const char *dtype, const char *name, const char *what)
{
    printf("FAIL %s %s %s: %s\n", isa, dtype, name, what);
    failures++;
}

/* Runs d with the given algorithm into y; returns the status. */
static cconv_status run(cconv_conv_desc d, cconv_algorithm algo, const void *x, const void *w,
                        const void *b, void *y)
{
    d.algorithm = algo;
    return cconv_conv(&d, x, w, b, y);
}

static void check_case(const test_case *c, cconv_dtype dt, const char *isa, FILE *out)
{
    const char *dts = dt == CCONV_FLOAT64 ? "float64" : "float32";
    cconv_conv_desc d = {0};
    d.dtype = dt;
    d.transposed = c->transposed;
    d.channels_last = c->channels_last;
    d.batch = c->N; d.in_channels = c->Ci; d.out_channels = c->Co; d.groups = c->G;
    const int64_t in[3] = {1, c->H, c->W}, k[3] = {1, c->K, c->K};
    for (int a = 0; a < 3; a++) {
        d.in_size[a] = in[a];
        d.kernel[a] = k[a];
        d.stride[a] = a ? c->S : 1;
        d.dilation[a] = a ? c->Dl : 1;
        d.pad_before[a] = d.pad_after[a] = a ? c->P : 0;
    }
    if (cconv_conv_output_size(&d) != CCONV_OK) { fail(isa, dts, c->name, "bad descriptor"); return; }
    const size_t nx = (size_t)(c->N * c->Ci * count(d.in_size));
    const size_t ny = (size_t)(c->N * c->Co * count(d.out_size));
    const size_t nw = (size_t)(c->transposed ? c->Ci * (c->Co / c->G) : c->Co * (c->Ci / c->G)) *
                      (size_t)(c->K * c->K);
    rng_state = 12345;
    void *x = filled(nx, dt), *w = filled(nw, dt), *b = filled((size_t)c->Co, dt);
    void *y = filled(ny, dt), *y3 = filled(ny, dt), *yref = filled(ny, dt);
    cconv_set_num_threads(1);
    cconv_status st = run(d, c->algo, x, w, b, y);
    if (st != CCONV_OK) fail(isa, dts, c->name, cconv_status_string(st));
    cconv_set_num_threads(3);
    st = run(d, c->algo, x, w, b, y3);
    cconv_set_num_threads(0);
    if (st == CCONV_OK && memcmp(y, y3, ny * (dt == CCONV_FLOAT64 ? 8 : 4)) != 0)
        fail(isa, dts, c->name, "1 and 3 threads differ");
    if (run(d, CCONV_ALGO_REFERENCE, x, w, b, yref) != CCONV_OK) fail(isa, dts, c->name, "reference failed");
    double err = 0, mag = 0;
    for (size_t i = 0; i < ny; i++) {
        const double e = fabs(at(y, i, dt) - at(yref, i, dt));
        err = e > err || e != e ? e : err;
        mag = fmax(mag, fabs(at(yref, i, dt)));
    }
    /* Winograd's transforms cost float32 about three decimal digits */
    const double tol = dt == CCONV_FLOAT64 ? 1e-12 : c->algo == CCONV_ALGO_WINOGRAD ? 1e-4 : 1e-5;
    char msg[160];
    if (!(err <= tol * (mag + 1))) {
        snprintf(msg, sizeof msg, "max error %.3g vs the reference (max |y| %.3g)", err, mag);
        fail(isa, dts, c->name, msg);
    }
    if (out && strcmp(isa, "generic") == 0)
        for (size_t i = 0; i < ny; i++) {
            const double v = at(y, i, dt);
            fwrite(&v, sizeof v, 1, out);
        }
    if (!c->transposed) {
        /* <gw, v> = <g, conv(x, v)>: g stands for grad_output, v for any weight (no bias) */
        void *g = filled(ny, dt), *v = filled(nw, dt), *gw = filled(nw, dt);
        if (cconv_conv_weight_grad(&d, x, g, gw) != CCONV_OK) fail(isa, dts, c->name, "weight grad failed");
        run(d, CCONV_ALGO_REFERENCE, x, v, NULL, yref);
        double lhs = 0, rhs = 0, scale = 0;
        for (size_t i = 0; i < nw; i++) lhs += at(gw, i, dt) * at(v, i, dt);
        for (size_t i = 0; i < ny; i++) {
            rhs += at(g, i, dt) * at(yref, i, dt);
            scale += fabs(at(g, i, dt) * at(yref, i, dt));
        }
        if (!(fabs(lhs - rhs) <= (dt == CCONV_FLOAT64 ? 1e-12 : 1e-5) * (scale + 1))) {
            snprintf(msg, sizeof msg, "weight gradient: <gw, v> %.9g != <g, conv(x, v)> %.9g", lhs, rhs);
            fail(isa, dts, c->name, msg);
        }
        free(g); free(v); free(gw);
    }
    free(x); free(w); free(b); free(y); free(y3); free(yref);
}

int main(int argc, char **argv)
{
    FILE *out = argc > 1 ? fopen(argv[1], "wb") : NULL;
    if (argc > 1 && !out) { perror(argv[1]); return 2; }
    static const char *const isas[] = {"avx512", "avx2", "generic"};
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!cconv_isa_available(isas[i])) continue;
        cconv_set_isa(isas[i]);
        for (size_t c = 0; c < NCASES; c++) {
            check_case(&cases[c], CCONV_FLOAT32, isas[i], out);
            check_case(&cases[c], CCONV_FLOAT64, isas[i], out);
            ran += 2;
        }
    }
    if (out) fclose(out);
    printf("%d cases (%s, OpenMP %s): %d failed\n", ran, cconv_isa_available("avx512") ? "avx512/avx2/generic"
           : cconv_isa_available("avx2") ? "avx2/generic" : "generic", cconv_has_openmp() ? "on" : "off",
           failures);
    return failures != 0;
}
