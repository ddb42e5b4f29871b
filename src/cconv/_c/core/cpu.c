/* CPU feature detection, the dispatch table and the thread count (semantics: include/cconv.h).
 * The process-wide settings are atomics, the per-thread overrides thread-locals; both are read on
 * the calling thread only: OpenMP workers use the plan's table or the one passed down. */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
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

static _Atomic(const cconv_isa_table *) process_isa; /* NULL until first use */
static _Thread_local const cconv_isa_table *thread_isa; /* NULL: follow process_isa */

static const cconv_isa_table *env_or_best_isa(void)
{
    /* The Python package warns at import when CCONV_ISA names no available ISA. */
    const char *env = getenv("CCONV_ISA");
    if (env && *env && strcmp(env, "auto") != 0) {
        const cconv_isa_table *t = find_isa(env);
        if (t && isa_supported(t)) return t;
    }
    return best_isa();
}

const cconv_isa_table *cconv_active_isa(void)
{
    if (thread_isa) return thread_isa;
    const cconv_isa_table *t = atomic_load_explicit(&process_isa, memory_order_acquire);
    if (!t) {
        /* Threads racing here choose the same table; a cconv_set_isa in between wins. */
        const cconv_isa_table *chosen = env_or_best_isa();
        t = NULL;
        if (atomic_compare_exchange_strong(&process_isa, &t, chosen)) t = chosen;
    }
    return t;
}

const char *cconv_get_isa(void) { return cconv_active_isa()->name; }

int cconv_isa_available(const char *name)
{
    const cconv_isa_table *t = name ? find_isa(name) : NULL;
    return t != NULL && isa_supported(t);
}

/* The table for a non-NULL cconv_set_isa / cconv_set_thread_isa argument; NULL when unavailable. */
static const cconv_isa_table *requested_isa(const char *name)
{
    if (strcmp(name, "auto") == 0) return best_isa();
    const cconv_isa_table *t = find_isa(name);
    return t && isa_supported(t) ? t : NULL;
}

cconv_status cconv_set_isa(const char *name)
{
    const cconv_isa_table *t = requested_isa(name ? name : "auto");
    if (!t) return CCONV_ERR_UNSUPPORTED;
    atomic_store_explicit(&process_isa, t, memory_order_release);
    return CCONV_OK;
}

cconv_status cconv_set_thread_isa(const char *name)
{
    const cconv_isa_table *t = name ? requested_isa(name) : NULL;
    if (name && !t) return CCONV_ERR_UNSUPPORTED;
    thread_isa = t;
    return CCONV_OK;
}

const char *cconv_get_thread_isa(void) { return thread_isa ? thread_isa->name : NULL; }

static atomic_int process_threads;       /* 0: follow OpenMP */
static _Thread_local int thread_threads; /* 0: follow process_threads */

void cconv_set_num_threads(int n)
{
    atomic_store_explicit(&process_threads, n > 0 ? n : 0, memory_order_relaxed);
}

void cconv_set_thread_num_threads(int n) { thread_threads = n > 0 ? n : 0; }

int cconv_get_thread_num_threads(void) { return thread_threads; }

int cconv_get_num_threads(void) { return cconv_threads(); }

/* Per calling thread: a small call runs serially without touching the settings. */
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
    if (thread_threads > 0) return thread_threads;
    const int n = atomic_load_explicit(&process_threads, memory_order_relaxed);
    if (n > 0) return n;
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

static volatile double fma_sink; /* the loops' results are used: the loops stay */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cconv_fma_peak(const char *name, cconv_dtype dtype, int64_t iters, int threads, double *seconds,
                      int *team)
{
    const cconv_isa_table *t = name ? find_isa(name) : NULL;
    if (!t || !isa_supported(t) || iters < 1 || threads < 1) return -1;
    const cconv_fma_loop_fn loop = t->fma_loop[dtype == CCONV_FLOAT64];
    double rate = 0, checksum = 0;
    int size = 1;
    const double t0 = now_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : rate, checksum)
#endif
    {
        double flops = 0;
        const double start = now_seconds();
        checksum += loop(iters, &flops);
        const double elapsed = now_seconds() - start;
        rate += flops / (elapsed > 1e-9 ? elapsed : 1e-9);
#ifdef _OPENMP
#pragma omp master
        size = omp_get_num_threads();
#endif
    }
    fma_sink = checksum;
    *seconds = now_seconds() - t0;
    *team = size;
    return rate;
}

double cconv_l3_bytes(void)
{
    /* Threads racing here compute the same value; atomic, so that the race is well defined. */
    static _Atomic double cached = -1;
    double bytes = atomic_load_explicit(&cached, memory_order_relaxed);
    if (bytes < 0) {
        long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
        v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
        bytes = v > 0 ? (double)v : 0.0;
        atomic_store_explicit(&cached, bytes, memory_order_relaxed);
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
    case CCONV_ALGO_EXACT: return "exact";
    }
    return "unknown";
}
