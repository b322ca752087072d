/* container.c - the frame of every libsat file and its section table.
 *
 * Reading checks, in this order, so each failure gets the most useful message: the magic
 * (is this a libsat file at all), the stored total size against the bytes present
 * (truncation), the CRC (damage), the version (newer file), then that every section lies
 * inside the file. Nothing is allocated here: sections point into the caller's buffer. */
#include "io/io.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static const char *const magics[2] = {"SATM", "SATC"};

/* zlib takes uInt lengths: feed large images in pieces. */
static uint32_t crc_of(const unsigned char *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

void sat__wb_header(sat__wbuf *b, const char magic[4]) {
    sat__wb_bytes(b, magic, 4);
    sat__wb_u32(b, SAT__FORMAT_VERSION);
    sat__wb_u64(b, 0); /* total size, filled in by sat__wb_finish */
}

void sat__wb_finish(sat__wbuf *b) {
    if (b->failed || b->len < SAT__HEADER_SIZE) return;
    uint64_t total = (uint64_t)b->len + SAT__TRAILER_SIZE;
    for (int i = 0; i < 8; i++) b->data[8 + i] = (unsigned char)(total >> (8 * i));
    sat__wb_u32(b, crc_of(b->data, b->len));
}

/* A tag for messages: its four characters when printable, else hex. */
static void tag_name(uint32_t tag, char out[12]) {
    char c[4];
    int printable = 1;
    for (int i = 0; i < 4; i++) {
        c[i] = (char)(tag >> (8 * i));
        printable &= isprint((unsigned char)c[i]) != 0;
    }
    if (printable)
        snprintf(out, 12, "'%c%c%c%c'", c[0], c[1], c[2], c[3]);
    else
        snprintf(out, 12, "0x%08x", (unsigned)tag);
}

static const char *kind_noun(int accept) {
    return accept == SAT__KIND_CHECKPOINT ? "checkpoint" : "model";
}

int32_t sat__image_parse(const void *buf, size_t size, int accept, const char *what,
                         sat__image *img, char *err) {
    const unsigned char *p = buf;
    memset(img, 0, sizeof *img);
    int kind = 0;
    for (int k = 0; k < 2; k++) {
        size_t n = size < 4 ? size : 4;
        if (memcmp(p, magics[k], n) == 0 && (accept & (1 << k))) kind = 1 << k;
    }
    if (!kind || size == 0) {
        if (size >= 4 && memcmp(p, magics[0], 4) == 0)
            return sat__fail(err, SAT_E_FORMAT, "%s: a libsat model file, not a checkpoint", what);
        return sat__fail(err, SAT_E_FORMAT, "%s: not a libsat %s file%s", what, kind_noun(accept),
                         size == 0 ? " (it is empty)" : "");
    }
    if (size < SAT__HEADER_SIZE + SAT__TRAILER_SIZE)
        return sat__fail(err, SAT_E_FORMAT, "%s: truncated: %zu bytes, shorter than the %u-byte header",
                         what, size, SAT__HEADER_SIZE + SAT__TRAILER_SIZE);
    if ((uint64_t)size > SAT__MAX_FILE_SIZE)
        return sat__fail(err, SAT_E_FORMAT, "%s: %zu bytes is over the 4 GiB limit", what, size);
    uint64_t total = sat__rd_u64(p + 8);
    if (total > size)
        return sat__fail(err, SAT_E_FORMAT, "%s: truncated: %zu of %llu bytes present", what, size,
                         (unsigned long long)total);
    if (total < size)
        return sat__fail(err, SAT_E_FORMAT, "%s: %llu unexpected bytes after the end of the file",
                         what, (unsigned long long)(size - total));
    size_t body = size - SAT__TRAILER_SIZE;
    if (crc_of(p, body) != sat__rd_u32(p + body))
        return sat__fail(err, SAT_E_FORMAT, "%s: checksum mismatch: file damaged", what);
    uint32_t version = sat__rd_u32(p + 4);
    if (version > SAT__FORMAT_VERSION)
        return sat__fail(err, SAT_E_VERSION,
                         "%s: format version %u is newer than this library reads (%u); use a newer "
                         "libsat", what, version, SAT__FORMAT_VERSION);
    if (version == 0) return sat__fail(err, SAT_E_FORMAT, "%s: invalid format version 0", what);
    img->kind = kind;
    img->version = version;

    size_t pos = SAT__HEADER_SIZE;
    while (pos < body) {
        if (body - pos < SAT__SECTION_HEADER)
            return sat__fail(err, SAT_E_FORMAT, "%s: section header at offset %zu runs past the end",
                             what, pos);
        uint32_t tag = sat__rd_u32(p + pos);
        uint64_t len = sat__rd_u64(p + pos + 4);
        char name[12];
        tag_name(tag, name);
        if (len > body - pos - SAT__SECTION_HEADER)
            return sat__fail(err, SAT_E_FORMAT,
                             "%s: section %s at offset %zu claims %llu bytes; only %zu remain", what,
                             name, pos, (unsigned long long)len, body - pos - SAT__SECTION_HEADER);
        if (sat__image_find(img, tag))
            return sat__fail(err, SAT_E_FORMAT, "%s: section %s appears twice", what, name);
        if (img->num_sections == SAT__MAX_SECTIONS)
            return sat__fail(err, SAT_E_FORMAT, "%s: more than %d sections", what, SAT__MAX_SECTIONS);
        sat__section *s = &img->sec[img->num_sections++];
        s->tag = tag;
        s->len = len;
        s->data = p + pos + SAT__SECTION_HEADER;
        s->offset = pos;
        pos += SAT__SECTION_HEADER + (size_t)len;
    }
    return SAT_OK;
}

const sat__section *sat__image_find(const sat__image *img, uint32_t tag) {
    for (int i = 0; i < img->num_sections; i++)
        if (img->sec[i].tag == tag) return &img->sec[i];
    return NULL;
}
