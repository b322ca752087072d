/* idx.c - the IDX format of MNIST and Fashion-MNIST (plain or gzip; zlib reads both).
 * Headers are big-endian: magic 0x00000803 + count, rows, cols for images (unsigned
 * bytes), magic 0x00000801 + count for labels. */
#include "dataset.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_CLASSES 10

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The last path component, so that messages name the file as the user knows it. */
static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int32_t open_gz(const char *path, gzFile *out) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return sat__fail_tls(SAT_E_IO, "cannot open %s: %s", path,
                             errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 17);
    *out = f;
    return SAT_OK;
}

/* Reads up to `want` bytes into buf; *got receives how many arrived before end of file.
 * A read or decompression error is reported (a truncated gzip stream is only short). */
static int32_t gz_read(gzFile f, const char *path, unsigned char *buf, size_t want, size_t *got) {
    size_t done = 0;
    while (done < want) {
        size_t chunk = want - done;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(f, buf + done, (unsigned)chunk);
        if (r < 0) {
            int code = 0;
            const char *msg = gzerror(f, &code);
            if (code == Z_BUF_ERROR) break; /* stream ends early: the caller says "truncated" */
            if (code == Z_ERRNO)
                return sat__fail_tls(SAT_E_IO, "cannot read %s: %s", path, strerror(errno));
            return sat__fail_tls(SAT_E_FORMAT, "%s: damaged gzip data (%s)", base_name(path),
                                 msg ? msg : "unknown zlib error");
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return SAT_OK;
}

#define IDX_PIECE ((size_t)1 << 20) /* bytes read between progress reports */

/* Reads `want` bytes into a buffer that grows only as data actually arrives, so a header
 * that claims gigabytes costs no more memory than the file really holds. With progress,
 * reads in pieces of IDX_PIECE and reports the examples of `unit` bytes read so far. */
static int32_t gz_read_grow(const sat_context *ctx, gzFile f, const char *path, size_t want,
                            sat__progress *progress, size_t unit, unsigned char **out, size_t *got) {
    size_t cap = want < IDX_PIECE ? want : IDX_PIECE;
    size_t have = 0;
    unsigned char *buf = sat__alloc(ctx, cap);
    if (!buf) return sat__fail_tls(SAT_E_NOMEM, "%s: out of memory", base_name(path));
    for (;;) {
        size_t n = 0, piece = cap - have;
        if (progress && piece > IDX_PIECE) piece = IDX_PIECE;
        int32_t st = gz_read(f, path, buf + have, piece, &n);
        if (st == SAT_OK && progress) st = sat__progress_to(progress, (int64_t)((have + n) / unit));
        if (st) {
            sat__dealloc(ctx, buf);
            return st;
        }
        have += n;
        if (n < piece || have == want) break; /* end of file, or everything read */
        if (have < cap) continue;
        size_t ncap = cap > want / 2 ? want : cap * 2;
        unsigned char *nbuf = sat__alloc(ctx, ncap);
        if (!nbuf) {
            sat__dealloc(ctx, buf);
            return sat__fail_tls(SAT_E_NOMEM, "%s: out of memory", base_name(path));
        }
        memcpy(nbuf, buf, have);
        sat__dealloc(ctx, buf);
        buf = nbuf;
        cap = ncap;
    }
    *out = buf;
    *got = have;
    return SAT_OK;
}

static int32_t read_header(gzFile f, const char *path, unsigned char *hdr, size_t size) {
    size_t got = 0;
    int32_t st = gz_read(f, path, hdr, size, &got);
    if (st) return st;
    if (got < size)
        return sat__fail_tls(SAT_E_FORMAT, "%s: truncated header (%zu of %zu bytes)",
                             base_name(path), got, size);
    return SAT_OK;
}

int32_t sat__idx_load(sat_context *ctx, const char *images_path, const char *labels_path,
                      const char *what, sat_dataset **out) {
    gzFile fi = NULL, fl = NULL;
    unsigned char *raw_labels = NULL, *raw_images = NULL;
    sat_dataset *ds = NULL;
    const char *iname = base_name(images_path), *lname = base_name(labels_path);
    unsigned char hdr[16];
    int32_t st;

    if ((st = open_gz(images_path, &fi))) goto done;
    if ((st = read_header(fi, images_path, hdr, 16))) goto done;
    uint32_t magic = be32(hdr), count = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (magic != IDX_MAGIC_IMAGES) {
        st = sat__fail_tls(SAT_E_FORMAT,
                           "%s: bad magic 0x%08x (expected 0x%08x: an IDX file of unsigned-byte "
                           "images with 3 dimensions)",
                           iname, (unsigned)magic, IDX_MAGIC_IMAGES);
        goto done;
    }
    if (count < 1 || count > SAT_DATA_MAX_EXAMPLES || rows < 1 || rows > SAT_DATA_MAX_SIDE ||
        cols < 1 || cols > SAT_DATA_MAX_SIDE ||
        (int64_t)count * rows * cols > SAT_DATA_MAX_PIXELS) {
        st = sat__fail_tls(SAT_E_FORMAT,
                           "%s: implausible dimensions %u x %u x %u (at most %lld images of "
                           "%d x %d, %lld pixels in all)",
                           iname, (unsigned)count, (unsigned)rows, (unsigned)cols,
                           (long long)SAT_DATA_MAX_EXAMPLES, SAT_DATA_MAX_SIDE, SAT_DATA_MAX_SIDE,
                           (long long)SAT_DATA_MAX_PIXELS);
        goto done;
    }

    if ((st = open_gz(labels_path, &fl))) goto done;
    if ((st = read_header(fl, labels_path, hdr, 8))) goto done;
    uint32_t lmagic = be32(hdr), lcount = be32(hdr + 4);
    if (lmagic != IDX_MAGIC_LABELS) {
        st = sat__fail_tls(SAT_E_FORMAT,
                           "%s: bad magic 0x%08x (expected 0x%08x: an IDX file of unsigned-byte "
                           "labels)",
                           lname, (unsigned)lmagic, IDX_MAGIC_LABELS);
        goto done;
    }
    if (lcount != count) {
        st = sat__fail_tls(SAT_E_FORMAT, "%s: %u labels but %s has %u images", lname,
                           (unsigned)lcount, iname, (unsigned)count);
        goto done;
    }

    sat__progress progress;
    if ((st = sat__progress_begin(&progress, ctx, what, count, NULL))) goto done;
    size_t got = 0;
    if ((st = gz_read_grow(ctx, fl, labels_path, count, NULL, 1, &raw_labels, &got))) goto done;
    if (got < count) {
        st = sat__fail_tls(SAT_E_FORMAT, "%s: truncated: %zu of %u labels present", lname, got,
                           (unsigned)count);
        goto done;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (raw_labels[i] >= IDX_CLASSES) {
            st = sat__fail_tls(SAT_E_FORMAT, "%s: label %u at index %u is not below %d", lname,
                               (unsigned)raw_labels[i], (unsigned)i, IDX_CLASSES);
            goto done;
        }
    }

    size_t pixels = (size_t)count * rows * cols;
    if ((st = gz_read_grow(ctx, fi, images_path, pixels, &progress, (size_t)rows * cols, &raw_images,
                           &got)))
        goto done;
    if (got < pixels) {
        st = sat__fail_tls(SAT_E_FORMAT,
                           "%s: truncated: %zu of %zu pixel bytes present (%u images of %u x %u)",
                           iname, got, pixels, (unsigned)count, (unsigned)rows, (unsigned)cols);
        goto done;
    }

    if ((st = sat__dataset_alloc(ctx, count, 1, (int32_t)rows, (int32_t)cols, IDX_CLASSES, &ds)))
        goto done;
    for (size_t i = 0; i < pixels; i++) ds->images[i] = (float)raw_images[i] / 255.0f;
    for (uint32_t i = 0; i < count; i++) ds->labels[i] = raw_labels[i];
    *out = ds;
    ds = NULL;

done:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    sat__dealloc(ctx, raw_labels);
    sat__dealloc(ctx, raw_images);
    sat_dataset_destroy(ds);
    return st;
}
