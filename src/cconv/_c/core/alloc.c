/* The C core's one heap allocator, so that a debug build can swap in the guarded one below.
 *
 * Normal build: posix_memalign, 64-byte aligned (a cache line, one AVX-512 vector), exactly the
 * bytes asked for, so that AddressSanitizer's redzone starts at the first byte past the request.
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

#ifndef CCONV_ALLOC_GUARD

void *cconv_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, CCONV_ALIGN, bytes) != 0) return NULL;
    /* A zero-byte request may give NULL (implementation-defined): ask for one byte then. */
    if (!p && posix_memalign(&p, CCONV_ALIGN, 1) != 0) return NULL;
    return p;
}

void cconv_free(void *p) { free(p); }

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
