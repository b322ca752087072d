/* test_io_damaged.c - damaged, truncated and hostile model files are rejected with the
 * right status and a message, *out stays NULL, nothing leaks and nothing large is
 * allocated. Hostile images are made by editing a good one section by section, following
 * docs/file-format.md, with the size and CRC recomputed so that the check under test is
 * the one that rejects them. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define SPEC_A "input 3 8 8\nconv 4 k=3 p=1 bias=0\nbn\nact\ngap\ndense 10\n"
#define SPEC_B "input 3 8 8\nconv 5 k=3 p=1 bias=0\nbn\nact\ngap\ndense 10\n"

/* ---- an allocator that counts, to catch leaks and oversized allocations ---- */

typedef struct {
    int64_t live;
    size_t largest;
} counter;

static void *count_alloc(void *user, size_t size, size_t alignment) {
    counter *c = user;
    size_t rounded = (size + alignment - 1) / alignment * alignment;
    void *p = aligned_alloc(alignment, rounded ? rounded : alignment);
    if (p) {
        c->live++;
        if (size > c->largest) c->largest = size;
    }
    return p;
}

static void count_free(void *user, void *ptr) {
    counter *c = user;
    if (ptr) c->live--;
    free(ptr);
}

typedef struct {
    counter cnt;
    sat_context *ctx;
    unsigned char *good; /* a valid image of a SmoothReLU model with batch norm */
    size_t size;
    char dir[64];
} fixture;

static unsigned char *save_image(sat_context *ctx, const char *spec, size_t *size) {
    sat_model *m = tu_model(ctx, spec, SAT_ACT_SMOOTHRELU, 4);
    void *buf = NULL;
    TU_CHECK(sat_model_save_buffer(m, NULL, &buf, size));
    tu_own_sat_mem(buf);
    tu_release(m);
    return buf;
}

/* The context and the good image are registered and go with the test; the counter they
 * use lives in a static fixture, so it outlives them. The teardown removes the directory. */
static int setup(void **state) {
    static fixture fx;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.alloc_fn = count_alloc;
    o.dealloc_fn = count_free;
    o.alloc_user = &f->cnt;
    TU_CHECK(sat_context_create(&o, &f->ctx));
    tu_own_context(f->ctx);
    f->good = save_image(f->ctx, SPEC_A, &f->size);
    f->cnt.live = 0;
    f->cnt.largest = 0;
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_io_bad_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rmdir(f->dir);
    return 0;
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* Offset of the header of the section with this tag, or fails the test. */
static size_t find_section(const unsigned char *img, size_t size, const char *tag) {
    size_t pos = 16;
    while (pos + 12 <= size - 4) {
        if (memcmp(img + pos, tag, 4) == 0) return pos;
        pos += 12 + (size_t)rd64(img + pos + 4);
    }
    fail_msg("section %s not found", tag);
    return 0;
}

/* Stores the total size and a fresh CRC, as a writer would. */
static void reseal(unsigned char *img, size_t size) {
    wr64(img + 8, size);
    wr32(img + size - 4, (uint32_t)crc32(0L, img, (uInt)(size - 4)));
}

static unsigned char *copy(const fixture *f) {
    unsigned char *c = tu_alloc(f->size);
    memcpy(c, f->good, f->size);
    return c;
}

/* Loads an image that must fail with `want`; checks *out, the message and the allocator. */
static void expect_reject(fixture *f, const void *img, size_t size, int32_t want, const char *needle) {
    sat_model *m = (sat_model *)(uintptr_t)1;
    int32_t st = sat_model_load_buffer(f->ctx, img, size, NULL, &m);
    if (st == SAT_OK) tu_own_model(m);
    if (st != want)
        fail_msg("status %d (%s), wanted %d; message: %s", st, sat_status_string(st), want, sat_last_error());
    assert_null(m);
    const char *msg = sat_last_error();
    assert_non_null(strstr(msg, "model buffer"));
    if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    assert_int_equal(f->cnt.live, 0);
    /* Nothing is allocated that the valid file would not need (a model's arena at most). */
    assert_true(f->cnt.largest < (size_t)1 << 22);
}

static void test_good_image_loads(void **state) {
    fixture *f = *state;
    sat_model *m = NULL;
    TU_CHECK(sat_model_load_buffer(f->ctx, f->good, f->size, NULL, &m));
    sat_model_destroy(m);
    assert_int_equal(f->cnt.live, 0);
}

static void test_every_flipped_byte(void **state) {
    fixture *f = *state;
    unsigned char *c = copy(f);
    size_t parm = find_section(f->good, f->size, "PARM");
    const size_t named[] = {0, 3, 5, 9, 16, 20, parm + 12 + 8 + 40, f->size / 2, f->size - 1};
    const char *needles[] = {"not a libsat", "not a libsat", "checksum", NULL, "checksum",
                             "checksum", "checksum", "checksum", "checksum"};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
        c[named[k]] ^= 0x10;
        expect_reject(f, c, f->size, SAT_E_FORMAT, needles[k]);
        c[named[k]] ^= 0x10;
    }
    /* Every byte, every bit position in turn: a single error is always caught. */
    for (size_t i = 0; i < f->size; i++) {
        unsigned char bit = (unsigned char)(1u << (i % 8));
        c[i] ^= bit;
        expect_reject(f, c, f->size, SAT_E_FORMAT, NULL);
        c[i] ^= bit;
    }
    tu_free(c);
}

static void test_truncated(void **state) {
    fixture *f = *state;
    const size_t lens[] = {0, 1, 3, 4, 15, 16, 19, 20, 40, f->size / 2, f->size - 4, f->size - 1};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
        expect_reject(f, f->good, lens[k], SAT_E_FORMAT, lens[k] >= 4 ? "truncated" : NULL);
    for (size_t n = 0; n < f->size; n++) expect_reject(f, f->good, n, SAT_E_FORMAT, NULL);
    /* Extra bytes after the end are damage too. */
    unsigned char *c = tu_alloc(f->size + 3);
    memcpy(c, f->good, f->size);
    memset(c + f->size, 0, 3);
    expect_reject(f, c, f->size + 3, SAT_E_FORMAT, "unexpected bytes");
    tu_free(c);
    /* Truncated through a file, too: the message names the path. */
    char path[128];
    snprintf(path, sizeof path, "%s/cut.satm", f->dir);
    FILE *fp = fopen(path, "wb");
    fwrite(f->good, 1, 16, fp);
    fclose(fp);
    sat_model *m = (sat_model *)(uintptr_t)1;
    assert_int_equal(sat_model_load(f->ctx, path, NULL, &m), SAT_E_FORMAT);
    assert_null(m);
    assert_non_null(strstr(sat_last_error(), path));
    assert_non_null(strstr(sat_last_error(), "truncated"));
    remove(path);
    assert_int_equal(f->cnt.live, 0);
}

static void test_wrong_magic_and_newer_version(void **state) {
    fixture *f = *state;
    unsigned char *c = copy(f);
    memcpy(c, "PK\3\4", 4);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "not a libsat model file");
    memcpy(c, f->good, f->size);
    wr32(c + 4, 2);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_VERSION, "version 2");
    wr32(c + 4, 0);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "version 0");
    tu_free(c);
}

static void test_huge_counts(void **state) {
    fixture *f = *state;
    unsigned char *c = copy(f);
    const char *tags[] = {"PARM", "BNST"};
    const uint64_t claims[] = {(uint64_t)1 << 60, (uint64_t)1 << 33, UINT64_MAX};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            memcpy(c, f->good, f->size);
            size_t pos = find_section(c, f->size, tags[t]);
            wr64(c + pos + 12, claims[k]);
            reseal(c, f->size);
            expect_reject(f, c, f->size, SAT_E_FORMAT, "claims");
        }
    /* A section length past the end of the file. */
    memcpy(c, f->good, f->size);
    size_t pos = find_section(c, f->size, "PARM");
    wr64(c + pos + 4, (uint64_t)1 << 40);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "remain");
    /* A spec length over the limit. */
    memcpy(c, f->good, f->size);
    pos = find_section(c, f->size, "SPEC");
    wr64(c + pos + 12, (uint64_t)2 << 20);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "1 MiB");
    tu_free(c);
}

/* An image whose SPEC and OPTS come from `donor` and the rest from the good image. */
static unsigned char *splice(fixture *f, const unsigned char *donor, size_t dsize, size_t *out_size) {
    size_t ds = find_section(donor, dsize, "SPEC"), dm = find_section(donor, dsize, "META");
    size_t gm = find_section(f->good, f->size, "META");
    size_t size = 16 + (dm - ds) + (f->size - gm);
    unsigned char *c = tu_alloc(size);
    memcpy(c, f->good, 16);
    memcpy(c + 16, donor + ds, dm - ds);
    memcpy(c + 16 + (dm - ds), f->good + gm, f->size - gm);
    reseal(c, size);
    *out_size = size;
    return c;
}

static void test_counts_must_match_spec(void **state) {
    fixture *f = *state;
    size_t bsize = 0;
    sat_context *plain = tu_context(1, 0);
    unsigned char *b = save_image(plain, SPEC_B, &bsize);
    size_t size = 0;
    unsigned char *c = splice(f, b, bsize, &size);
    expect_reject(f, c, size, SAT_E_FORMAT, "parameters");
}

/* Replaces the spec text (the SPEC section keeps its own length right). */
static unsigned char *with_spec(fixture *f, const char *spec, size_t len, size_t *out_size) {
    size_t s = find_section(f->good, f->size, "SPEC");
    size_t old = (size_t)rd64(f->good + s + 4);
    size_t size = f->size - old + 8 + len;
    unsigned char *c = tu_alloc(size);
    memcpy(c, f->good, s);
    memcpy(c + s, "SPEC", 4);
    wr64(c + s + 4, 8 + len);
    wr64(c + s + 12, len);
    memcpy(c + s + 20, spec, len);
    memcpy(c + s + 20 + len, f->good + s + 12 + old, f->size - (s + 12 + old));
    reseal(c, size);
    *out_size = size;
    return c;
}

static void test_invalid_values(void **state) {
    fixture *f = *state;
    size_t size = 0;
    static const char unknown[] = "input 3 8 8\nconv3 4\n";
    unsigned char *c = with_spec(f, unknown, sizeof unknown - 1, &size);
    expect_reject(f, c, size, SAT_E_FORMAT, "unknown layer");
    tu_free(c);
    static const char latin1[] = "input 3 8 8\nconv 4 k=3\x80\n";
    c = with_spec(f, latin1, sizeof latin1 - 1, &size);
    expect_reject(f, c, size, SAT_E_FORMAT, "UTF-8");
    tu_free(c);
    /* A NUL would cut the spec short when it becomes a C string. */
    static const char nul[] = "input 3 8 8\0dense 10\n";
    c = with_spec(f, nul, sizeof nul - 1, &size);
    expect_reject(f, c, size, SAT_E_FORMAT, "byte 11");
    tu_free(c);

    /* A NaN or Inf parameter or statistic. */
    c = copy(f);
    const char *tags[] = {"PARM", "BNST"};
    const uint32_t bits[] = {0x7fc00000u, 0x7f800000u, 0xff800000u};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            memcpy(c, f->good, f->size);
            size_t pos = find_section(c, f->size, tags[t]);
            wr32(c + pos + 12 + 8 + 4, bits[k]);
            reseal(c, f->size);
            expect_reject(f, c, f->size, SAT_E_FORMAT, "NaN or Inf");
        }
    /* Options out of range: unknown activation, max_batch 0, batch-norm mode 7. */
    const size_t offs[] = {0, 8, 28};
    const uint32_t vals[] = {99, 0, 7};
    for (int k = 0; k < 3; k++) {
        memcpy(c, f->good, f->size);
        size_t pos = find_section(c, f->size, "OPTS");
        wr32(c + pos + 12 + offs[k], vals[k]);
        reseal(c, f->size);
        expect_reject(f, c, f->size, SAT_E_FORMAT, NULL);
    }
    /* Meta out of range. */
    memcpy(c, f->good, f->size);
    size_t pos = find_section(c, f->size, "META");
    wr32(c + pos + 12, 5);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "norm");
    /* A section that is missing (its tag renamed to an unknown one). */
    memcpy(c, f->good, f->size);
    pos = find_section(c, f->size, "BNST");
    memcpy(c + pos, "XXXX", 4);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "missing");
    /* The same section twice. */
    memcpy(c, f->good, f->size);
    memcpy(c + find_section(c, f->size, "BNST"), "META", 4);
    reseal(c, f->size);
    expect_reject(f, c, f->size, SAT_E_FORMAT, "twice");
    tu_free(c);
}

static void test_unknown_section_is_skipped(void **state) {
    fixture *f = *state;
    /* A later version may add sections; this one reads past them. */
    size_t size = f->size + 12 + 5;
    unsigned char *c = tu_alloc(size);
    memcpy(c, f->good, f->size - 4);
    memcpy(c + f->size - 4, "XTRA", 4);
    wr64(c + f->size, 5);
    memcpy(c + f->size + 8, "hello", 5);
    reseal(c, size);
    sat_model *m = NULL;
    TU_CHECK(sat_model_load_buffer(f->ctx, c, size, NULL, &m));
    sat_model_destroy(m);
    tu_free(c);
}

/* Random edits behind a valid size and CRC reach the section and value checks: whatever
 * the bytes, a load either fails cleanly or gives a usable model. */
static void test_resealed_random_edits(void **state) {
    fixture *f = *state;
    unsigned char *c = tu_alloc(f->size);
    uint64_t s = 12345;
    int loaded = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(c, f->good, f->size);
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = 16 + (size_t)((s >> 33) % (f->size - 20));
            c[pos] = (unsigned char)(s >> 24);
        }
        reseal(c, f->size);
        sat_model *m = (sat_model *)(uintptr_t)1;
        int32_t st = sat_model_load_buffer(f->ctx, c, f->size, NULL, &m);
        if (st == SAT_OK) {
            float x[3 * 8 * 8], logits[10];
            tu_fill_uniform(x, 3 * 8 * 8, 0.0f, 1.0f, 1);
            tu_own_model(m);
            TU_CHECK(sat_model_forward(m, x, 1, logits));
            tu_release(m);
            loaded++;
        } else {
            assert_null(m);
            assert_true(strlen(sat_last_error()) > 0);
        }
        assert_int_equal(f->cnt.live, 0);
    }
    /* Edits inside parameter values still load: the checks are not over-strict. */
    assert_true(loaded > 0);
    tu_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_image_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_magic_and_newer_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_must_match_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_section_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resealed_random_edits, setup, teardown),
    };
    return tu_run_group("test_io_damaged", tests, sizeof tests / sizeof tests[0]);
}
