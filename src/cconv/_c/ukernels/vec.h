/* Vectors of a microkernel instance's element type T, in GCC vector extensions (clang too): the
 * compiler lowers them to the instance's ISA and contracts a*b + c into FMAs where it has them.
 * Included after the ISA's config header (VBYTES) and `typedef ${T} T;`. */
#ifndef CCONV_UKERNELS_VEC_H
#define CCONV_UKERNELS_VEC_H

#include <stdint.h>
#include <string.h>

#define VL (VBYTES / (int)sizeof(T)) /* lanes of a vector */
typedef T VT __attribute__((vector_size(VBYTES)));

static inline VT vload(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(T *p, VT v) { memcpy(p, &v, sizeof v); }

/* A vector of copies of s: one broadcast instruction. s - 0.0 is s for every s (-0.0 included),
 * so the compiler drops the subtraction; `s + 0.0` would turn -0.0 into +0.0 and so stays, and a
 * lane-by-lane loop becomes masked moves. */
static inline VT vsplat(T s)
{
    return s - (VT){0};
}

/* The first n < VL lanes at p (the others zero), and the store of lanes [lo, hi) of v at p + lo ..
 * p + hi - 1, masked where the ISA can: nothing else is touched (p itself may lie before a row or
 * past the tensor). */
#if defined(__AVX512F__) && VBYTES == 64
#include <immintrin.h>
static inline VT vload_part(const T *p, int64_t n)
{
    if (sizeof(T) == 4) return (VT)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
    return (VT)_mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
}
static inline void vstore_lanes(T *p, VT v, int64_t lo, int64_t hi)
{
    const unsigned m = ((1u << hi) - 1) & ~((1u << lo) - 1);
    if (sizeof(T) == 4) _mm512_mask_storeu_ps(p, (__mmask16)m, (__m512)v);
    else _mm512_mask_storeu_pd(p, (__mmask8)m, (__m512d)v);
}
#elif defined(__AVX__) && VBYTES == 32
#include <immintrin.h>
/* lanes lo <= i < hi set: the mask of AVX's masked moves */
static inline __m256i vlanes(int64_t lo, int64_t hi)
{
    if (sizeof(T) == 4) {
        const int32_t __attribute__((vector_size(32))) i = {0, 1, 2, 3, 4, 5, 6, 7};
        return (__m256i)((i >= (int32_t)lo) & (i < (int32_t)hi));
    }
    const int64_t __attribute__((vector_size(32))) i = {0, 1, 2, 3};
    return (__m256i)((i >= lo) & (i < hi));
}
static inline VT vload_part(const T *p, int64_t n)
{
    if (sizeof(T) == 4) return (VT)_mm256_maskload_ps((const float *)(const void *)p, vlanes(0, n));
    return (VT)_mm256_maskload_pd((const double *)(const void *)p, vlanes(0, n));
}
static inline void vstore_lanes(T *p, VT v, int64_t lo, int64_t hi)
{
    if (sizeof(T) == 4) _mm256_maskstore_ps((float *)(void *)p, vlanes(lo, hi), (__m256)v);
    else _mm256_maskstore_pd((double *)(void *)p, vlanes(lo, hi), (__m256d)v);
}
#else
static inline VT vload_part(const T *p, int64_t n)
{
    T buf[VL] = {0};
    for (int64_t i = 0; i < n; i++) buf[i] = p[i];
    return vload(buf);
}
static inline void vstore_lanes(T *p, VT v, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) p[i] = v[i];
}
#endif
static inline void vstore_part(T *p, VT v, int64_t n) { vstore_lanes(p, v, 0, n); }

/* Integer lanes as wide as each float type's (masks). */
typedef int32_t dw_lane_int_f32;
typedef int64_t dw_lane_int_f64;

/* o[j][i] = src[i*ss + j] for i < n (o[j][i] = 0 past n), j < 8: an 8x8 block through registers
 * (3 rounds of 8 shuffles); n <= 8 rows of the source are read. */
typedef T v8 __attribute__((vector_size(8 * sizeof(T))));
static inline void transpose8n(const T *src, ptrdiff_t ss, int n, v8 o[8])
{
    v8 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (v8){0};
        if (i < n) memcpy(&r[i], src + i * ss, sizeof r[i]);
    }
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; k++) {
            u[i + 2 * k] = __builtin_shufflevector(t[i + k], t[i + k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + 2 * k + 1] = __builtin_shufflevector(t[i + k], t[i + k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    /* u[q] (q < 4) holds rows 0-3 of columns q and q + 4; u[q + 4] rows 4-7 */
    for (int q = 0; q < 4; q++) {
        o[q] = __builtin_shufflevector(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        o[q + 4] = __builtin_shufflevector(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

static inline void transpose8(const T *src, ptrdiff_t ss, v8 o[8]) { transpose8n(src, ss, 8, o); }

/* y[i] = b[i] for i < n <= 8: whole vectors of 8, 4, 2 and 1 lanes (a constant n takes no branch).
 * b by address: a vector argument wider than the ISA's registers changes the ABI (clang's
 * -Wpsabi, for the baseline and AVX2 builds of 8 doubles). */
static inline void store8n(T *y, const v8 *bp, int n)
{
    const v8 b = *bp;
    typedef T v4 __attribute__((vector_size(4 * sizeof(T))));
    typedef T v2 __attribute__((vector_size(2 * sizeof(T))));
    if (n == 8) { memcpy(y, &b, sizeof b); return; }
    v4 q = __builtin_shufflevector(b, b, 0, 1, 2, 3);
    if (n >= 4) {
        memcpy(y, &q, sizeof q);
        q = __builtin_shufflevector(b, b, 4, 5, 6, 7);
        y += 4; n -= 4;
    }
    if (n >= 2) {
        const v2 h = __builtin_shufflevector(q, q, 0, 1);
        memcpy(y, &h, sizeof h);
        q = __builtin_shufflevector(q, q, 2, 3, 0, 1);
        y += 2; n -= 2;
    }
    if (n) *y = q[0];
}

#endif
