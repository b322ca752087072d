/* encode.c - little-endian fixed-width values: a growing write buffer and readers.
 * Bytes are assembled one by one so the files are the same on any host byte order; a
 * float travels as its binary32 bit pattern (memcpy to uint32), so NaN payloads and
 * signed zeros survive a round trip. */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

static int reserve(sat__wbuf *b, size_t n) {
    if (b->failed) return 0;
    if (n <= b->cap - b->len) return 1;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void sat__wb_bytes(sat__wbuf *b, const void *p, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_le(unsigned char *dst, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) dst[i] = (unsigned char)(v >> (8 * i));
}

void sat__wb_u32(sat__wbuf *b, uint32_t v) {
    if (!reserve(b, 4)) return;
    put_le(b->data + b->len, v, 4);
    b->len += 4;
}

void sat__wb_u64(sat__wbuf *b, uint64_t v) {
    if (!reserve(b, 8)) return;
    put_le(b->data + b->len, v, 8);
    b->len += 8;
}

void sat__wb_f32(sat__wbuf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    sat__wb_u32(b, u);
}

void sat__wb_floats(sat__wbuf *b, const float *x, int64_t n) {
    if (n <= 0 || !reserve(b, (size_t)n * 4)) return;
    unsigned char *dst = b->data + b->len;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_le(dst + 4 * i, u, 4);
    }
    b->len += (size_t)n * 4;
}

size_t sat__wb_section_begin(sat__wbuf *b, uint32_t tag) {
    sat__wb_u32(b, tag);
    size_t mark = b->len;
    sat__wb_u64(b, 0); /* length, filled in by sat__wb_section_end */
    return mark;
}

void sat__wb_section_end(sat__wbuf *b, size_t mark) {
    if (b->failed) return;
    put_le(b->data + mark, (uint64_t)(b->len - mark - 8), 8);
}

void sat__wb_free(sat__wbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

uint32_t sat__rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t sat__rd_u64(const unsigned char *p) {
    return (uint64_t)sat__rd_u32(p) | (uint64_t)sat__rd_u32(p + 4) << 32;
}

float sat__rd_f32(const unsigned char *p) {
    uint32_t u = sat__rd_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void sat__rd_floats(float *dst, const unsigned char *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = sat__rd_f32(src + 4 * i);
}

int64_t sat__rd_first_nonfinite(const unsigned char *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if ((sat__rd_u32(src + 4 * i) & 0x7f800000u) == 0x7f800000u) return i;
    return -1;
}
