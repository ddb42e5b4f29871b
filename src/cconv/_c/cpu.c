/* CPU feature detection, the dispatch table and the thread count.
 * The active ISA is the only mutable global: chosen once at first use (CCONV_ISA may force it)
 * and changed only by cconv_set_isa. */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "internal.h"

static int isa_supported(const cconv_isa_table *t)
{
#ifdef CCONV_X86
    __builtin_cpu_init();
    if (t == &cconv_isa_avx512)
        /* __builtin_cpu_supports checks the OS saves zmm state (xgetbv) in gcc >= 11. */
        return __builtin_cpu_supports("avx512f");
    if (t == &cconv_isa_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return t == &cconv_isa_generic;
}

static const cconv_isa_table *const all_isas[] = {
#ifdef CCONV_X86
    &cconv_isa_avx512, &cconv_isa_avx2,
#endif
    &cconv_isa_generic,
};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])

static const cconv_isa_table *find_isa(const char *name)
{
    for (size_t i = 0; i < N_ISAS; i++)
        if (strcmp(all_isas[i]->name, name) == 0) return all_isas[i];
    return NULL;
}

static const cconv_isa_table *best_isa(void)
{
    for (size_t i = 0; i < N_ISAS; i++)
        if (isa_supported(all_isas[i])) return all_isas[i];
    return &cconv_isa_generic;
}

static const cconv_isa_table *volatile active;

const cconv_isa_table *cconv_active_isa(void)
{
    const cconv_isa_table *t = active;
    if (!t) {
        const char *env = getenv("CCONV_ISA");
        t = NULL;
        if (env && *env && strcmp(env, "auto") != 0) {
            t = find_isa(env);
            if (t && !isa_supported(t)) t = NULL;
        }
        if (!t) t = best_isa();
        active = t;
    }
    return t;
}

const char *cconv_get_isa(void) { return cconv_active_isa()->name; }

int cconv_isa_available(const char *name)
{
    const cconv_isa_table *t = name ? find_isa(name) : NULL;
    return t != NULL && isa_supported(t);
}

cconv_status cconv_set_isa(const char *name)
{
    if (name == NULL || strcmp(name, "auto") == 0) {
        active = best_isa();
        return CCONV_OK;
    }
    const cconv_isa_table *t = find_isa(name);
    if (!t || !isa_supported(t)) return CCONV_ERR_UNSUPPORTED;
    active = t;
    return CCONV_OK;
}

static volatile int num_threads_setting; /* 0: follow OpenMP */

void cconv_set_num_threads(int n) { num_threads_setting = n > 0 ? n : 0; }

int cconv_get_num_threads(void) { return cconv_threads(); }

/* Per calling thread: a small call runs serially without touching the global setting. */
static _Thread_local int serial_override;

int cconv_set_serial(int on)
{
    const int old = serial_override;
    serial_override = on;
    return old;
}

int cconv_threads(void)
{
    if (serial_override) return 1;
    if (num_threads_setting > 0) return num_threads_setting;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int cconv_has_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

double cconv_l3_bytes(void)
{
    static double bytes = -1; /* benign race: every thread computes the same value */
    if (bytes < 0) {
        long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
        v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
        bytes = v > 0 ? (double)v : 0.0;
    }
    return bytes;
}

const char *cconv_status_string(cconv_status s)
{
    switch (s) {
    case CCONV_OK: return "ok";
    case CCONV_ERR_INVALID: return "invalid convolution descriptor";
    case CCONV_ERR_NOMEM: return "out of memory";
    case CCONV_ERR_OVERFLOW: return "size overflows int64";
    case CCONV_ERR_UNSUPPORTED: return "unsupported by the requested algorithm or ISA";
    }
    return "unknown status";
}

const char *cconv_algorithm_name(cconv_algorithm a)
{
    switch (a) {
    case CCONV_ALGO_AUTO: return "auto";
    case CCONV_ALGO_GEMM: return "gemm";
    case CCONV_ALGO_DEPTHWISE: return "depthwise";
    case CCONV_ALGO_REFERENCE: return "reference";
    case CCONV_ALGO_GROUPED: return "grouped";
    case CCONV_ALGO_WINOGRAD: return "winograd";
    }
    return "unknown";
}
