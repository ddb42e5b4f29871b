/* 4 x 4, 2 x 4 and 3 x 4 transposes through registers, for the element type T of the including template
 * (`typedef ${T} T;` comes first). */
#ifndef CCONV_TRANSPOSE4_H
#define CCONV_TRANSPOSE4_H
#include <stdint.h>
#include <string.h>

typedef T cconv_v4 __attribute__((vector_size(4 * sizeof(T))));

/* dst[j*ds + i] = src[i*ss + j] for i, j < 4 (vector shuffles: unpack pairs, then halves). */
static inline void cconv_transpose4(const T *src, int64_t ss, T *dst, int64_t ds)
{
    cconv_v4 r[4], t[4];
    for (int i = 0; i < 4; i++) memcpy(&r[i], src + i * ss, sizeof r[i]);
    t[0] = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
    t[1] = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
    t[2] = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
    t[3] = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
    r[0] = __builtin_shufflevector(t[0], t[2], 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(t[0], t[2], 2, 3, 6, 7);
    r[2] = __builtin_shufflevector(t[1], t[3], 0, 1, 4, 5);
    r[3] = __builtin_shufflevector(t[1], t[3], 2, 3, 6, 7);
    for (int j = 0; j < 4; j++) memcpy(dst + j * ds, &r[j], sizeof r[j]);
}

/* dst[2i] = a[i], dst[2i + 1] = b[i] for i < 4 (a 2 x 4 transpose). */
static inline void cconv_interleave2(const T *a, const T *b, T *dst)
{
    cconv_v4 u, v, lo, hi;
    memcpy(&u, a, sizeof u);
    memcpy(&v, b, sizeof v);
    lo = __builtin_shufflevector(u, v, 0, 4, 1, 5);
    hi = __builtin_shufflevector(u, v, 2, 6, 3, 7);
    memcpy(dst, &lo, sizeof lo);
    memcpy(dst + 4, &hi, sizeof hi);
}

/* dst[3i] = a[i], dst[3i + 1] = b[i], dst[3i + 2] = c[i] for i < 4 (a 3 x 4 transpose). */
static inline void cconv_interleave3(const T *a, const T *b, const T *c, T *dst)
{
    cconv_v4 u, v, w, o[3];
    memcpy(&u, a, sizeof u);
    memcpy(&v, b, sizeof v);
    memcpy(&w, c, sizeof w);
    const cconv_v4 ab = __builtin_shufflevector(u, v, 0, 4, 1, 5);  /* a0 b0 a1 b1 */
    const cconv_v4 bc = __builtin_shufflevector(v, w, 1, 5, 2, 6);  /* b1 c1 b2 c2 */
    const cconv_v4 ab3 = __builtin_shufflevector(u, v, 3, 7, 3, 7); /* a3 b3 a3 b3 */
    o[0] = __builtin_shufflevector(ab, w, 0, 1, 4, 2);              /* a0 b0 c0 a1 */
    o[1] = __builtin_shufflevector(bc, u, 0, 1, 6, 2);              /* b1 c1 a2 b2 */
    o[2] = __builtin_shufflevector(w, ab3, 2, 4, 5, 3);             /* c2 a3 b3 c3 */
    /* Three stores: one of 48 bytes went through the stack (a reload that waits on the stores). */
    for (int i = 0; i < 3; i++) memcpy(dst + 4 * i, &o[i], sizeof o[i]);
}

#endif
