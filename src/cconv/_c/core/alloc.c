/* The C core's one heap allocator, so that a debug build can swap in the guarded one below.
 *
 * Normal build: posix_memalign, 64-byte aligned (a cache line, one AVX-512 vector). A one-shot
 * call allocates and frees its plan, packed filters and workspaces (ten blocks or so) every time;
 * glibc's aligned allocations split chunks and consolidate its free lists, about a tenth of a
 * small call (docs/perf-notes.md). So blocks up to CACHE_BLOCK_MAX, sized up to one of four
 * classes per power of two, carry a 64-byte header with their class and, when freed, wait in a
 * small cache of the freeing thread (at most CACHE_SLOTS blocks, CACHE_HELD_MAX bytes; emptied
 * when the thread exits) for the next request of their class on that thread. Results do not
 * depend on it: a block's contents are undefined either way. Sanitizer builds ask for exactly the
 * bytes requested, without header or cache, so that AddressSanitizer's redzone starts at the first
 * byte past the request and every use after free is seen; under valgrind (when its headers were
 * there at build time) the cache is off too, so that memcheck sees every block and an injected
 * allocation failure (tests/leaks) can hit every call site.
 *
 * Guard build (-DCCONV_ALLOC_GUARD; setup.py adds it for CCONV_ALLOC_GUARD=1): each block gets its
 * own mmap whose last page is PROT_NONE, the block's end rounded up to 64 bytes at the start of
 * that page: an access past the rounded end faults at once. The rest of the mapping (block, tail
 * under 64 bytes, space in front) holds a poison that is a NaN as float32 and as float64, so a
 * result computed from memory the core never wrote comes out NaN; cconv_free aborts if the tail
 * or the space in front lost it. Slow (two system calls, two pages a block): for tests only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define CCONV_ALIGN 64

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CCONV_EXACT_ALLOC
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define CCONV_EXACT_ALLOC
#endif
#endif

#ifndef CCONV_ALLOC_GUARD

static void *aligned_block(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, CCONV_ALIGN, bytes) != 0) return NULL;
    /* A zero-byte request may give NULL (implementation-defined): ask for one byte then. */
    if (!p && posix_memalign(&p, CCONV_ALIGN, 1) != 0) return NULL;
    return p;
}

#ifdef CCONV_EXACT_ALLOC

void *cconv_alloc(size_t bytes) { return aligned_block(bytes); }

void cconv_free(void *p) { free(p); }

#else

#include <pthread.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

enum { CACHE_SLOTS = 16 };
#define CACHE_BLOCK_MAX ((size_t)256 << 10)
#define CACHE_HELD_MAX ((size_t)1 << 20)

/* In the CCONV_ALIGN bytes in front of every block: its usable size, 0 when it is not cached
 * (larger than CACHE_BLOCK_MAX). */
typedef struct {
    size_t cap;
} block_header;

typedef struct {
    void *block[CACHE_SLOTS]; /* as allocated, header first: reachable for leak checkers */
    size_t cap[CACHE_SLOTS], held;
    int n;
} block_cache;

static pthread_key_t cache_key;
static int cache_key_ok;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
/* This thread's cache; DEAD once its exit emptied it (a later free goes to the heap). */
static _Thread_local block_cache *thread_cache;
#define DEAD ((block_cache *)1)

static void drain(void *arg)
{
    block_cache *c = arg;
    for (int i = 0; i < c->n; i++) free(c->block[i]);
    free(c);
    thread_cache = DEAD;
}

static void make_key(void) { cache_key_ok = pthread_key_create(&cache_key, drain) == 0; }

/* This thread's cache, made on first use; NULL when there is none. */
static block_cache *cache(void)
{
    block_cache *c = thread_cache;
    if (c == DEAD) return NULL;
    if (c) return c;
    if (RUNNING_ON_VALGRIND) {
        thread_cache = DEAD;
        return NULL;
    }
    pthread_once(&cache_once, make_key);
    if (!cache_key_ok || !(c = calloc(1, sizeof *c))) return NULL;
    if (pthread_setspecific(cache_key, c) != 0) {
        free(c);
        return NULL;
    }
    return thread_cache = c;
}

/* bytes rounded up to its class: 64 bytes, else the next of 1, 1.25, 1.5, 1.75 times a power of
 * two (at most a quarter more than asked for). */
static size_t size_class(size_t bytes)
{
    if (bytes <= 64) return 64;
    size_t top = 64;
    while (top < bytes) top <<= 1;
    const size_t q = top / 8; /* top/2 < bytes <= top: steps of a quarter of top/2 */
    return (bytes + q - 1) / q * q;
}

void *cconv_alloc(size_t bytes)
{
    const size_t cap = bytes <= CACHE_BLOCK_MAX ? size_class(bytes) : 0;
    block_cache *c = cap ? cache() : NULL;
    if (c)
        for (int i = c->n - 1; i >= 0; i--)
            if (c->cap[i] == cap) {
                char *raw = c->block[i];
                c->n--;
                c->block[i] = c->block[c->n];
                c->cap[i] = c->cap[c->n];
                c->held -= cap;
                return raw + CCONV_ALIGN;
            }
    if (bytes > SIZE_MAX - CCONV_ALIGN) return NULL;
    char *raw = aligned_block(CCONV_ALIGN + (cap ? cap : bytes));
    if (!raw) return NULL;
    ((block_header *)(void *)raw)->cap = cap;
    return raw + CCONV_ALIGN;
}

void cconv_free(void *p)
{
    if (!p) return;
    char *raw = (char *)p - CCONV_ALIGN;
    const size_t cap = ((const block_header *)(void *)raw)->cap;
    block_cache *c = cap ? cache() : NULL;
    if (!c || c->n == CACHE_SLOTS || c->held + cap > CACHE_HELD_MAX) {
        free(raw);
        return;
    }
    c->block[c->n] = raw;
    c->cap[c->n++] = cap;
    c->held += cap;
}

#endif

#else

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* As float32 0x7FF7DEAD is a quiet NaN; two of them, 0x7FF7DEAD7FF7DEAD, are a signalling NaN as
 * float64 (no pattern is a signalling NaN of both widths: float64's exponent covers float32's
 * quiet bit). */
#define POISON 0x7FF7DEADu
#define MAGIC 0x6363766775617264ull

/* At the start of the 64 bytes in front of the block. */
typedef struct {
    uint64_t magic;
    size_t bytes, maplen;
    char *base;
} guard_header;

static size_t page_bytes(void)
{
    static size_t page; /* benign race: every thread computes the same value */
    if (!page) {
        const long v = sysconf(_SC_PAGESIZE);
        page = v > 0 ? (size_t)v : 4096;
    }
    return page;
}

static void poison(char *from, char *to)
{
    const uint32_t w = POISON;
    for (; from < to; from += 4) memcpy(from, &w, 4); /* from, to: multiples of 4 */
}

/* The first byte in [from, to) that no longer holds the poison poison() wrote from base; NULL if
 * none. */
static const char *poison_broken(const char *base, const char *from, const char *to)
{
    const uint32_t w = POISON;
    unsigned char pat[4];
    memcpy(pat, &w, 4);
    for (const char *q = from; q < to; q++)
        if ((unsigned char)*q != pat[(q - base) & 3]) return q;
    return NULL;
}

void *cconv_alloc(size_t bytes)
{
    const size_t page = page_bytes();
    if (bytes > SIZE_MAX / 2) return NULL;
    const size_t body = (bytes + CCONV_ALIGN - 1) / CCONV_ALIGN * CCONV_ALIGN;
    const size_t data = (CCONV_ALIGN + body + page - 1) / page * page; /* header slot + block */
    const size_t maplen = data + page;
    char *base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    if (mprotect(base + data, page, PROT_NONE) != 0) {
        munmap(base, maplen);
        return NULL;
    }
    char *p = base + data - body;
    poison(base, base + data);
    guard_header *h = (guard_header *)(void *)(p - CCONV_ALIGN);
    *h = (guard_header){MAGIC, bytes, maplen, base};
    return p;
}

/* at: the offending byte's offset from the block's start (negative: in front of it). */
static void guard_fail(const char *what, const void *p, size_t bytes, ptrdiff_t at)
{
    fprintf(stderr, "cconv: CCONV_ALLOC_GUARD: %s of the %zu-byte block at %p (offset %td)\n",
            what, bytes, p, at);
    abort();
}

void cconv_free(void *ptr)
{
    if (!ptr) return;
    char *p = ptr;
    const guard_header *h = (const guard_header *)(void *)(p - CCONV_ALIGN);
    if (h->magic != MAGIC) guard_fail("write before the start (header overwritten)", p, 0, 0);
    const size_t bytes = h->bytes, maplen = h->maplen;
    char *base = h->base;
    const char *bad = poison_broken(base, base, (const char *)h);
    if (!bad) bad = poison_broken(base, (const char *)(h + 1), p);
    if (bad) guard_fail("write before the start", p, bytes, bad - p);
    bad = poison_broken(base, p + bytes, base + maplen - page_bytes());
    if (bad) guard_fail("write past the end", p, bytes, bad - p);
    munmap(base, maplen);
}

#endif

void *cconv_alloc_zeroed(size_t bytes)
{
    void *p = cconv_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}
