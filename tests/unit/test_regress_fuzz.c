/* test_regress_fuzz.c - inputs the fuzzers (tests/fuzz) found to misbehave, kept as plain
 * unit tests so that they run in every build and under the sanitizers. The raw
 * reproducers are also in tests/fuzz/corpus/<target>/ (replayed by fuzz_replay_*). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a model file written field by field (docs/file-format.md) ---- */

typedef struct {
    unsigned char *p;
    size_t len;
} image;

static void put(image *im, const void *src, size_t n) {
    im->p = realloc(im->p, im->len + n);
    assert_non_null(im->p);
    memcpy(im->p + im->len, src, n);
    im->len += n;
}

static void put_u32(image *im, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(im, b, 4);
}

static void put_u64(image *im, uint64_t v) {
    put_u32(im, (uint32_t)v);
    put_u32(im, (uint32_t)(v >> 32));
}

static void section(image *im, const char *tag, uint64_t len) {
    put(im, tag, 4);
    put_u64(im, len);
}

/* A model file holding `spec` with no parameters and no state, and max_batch. */
static image model_file(const char *spec, int32_t max_batch) {
    image im = {NULL, 0};
    size_t n = strlen(spec);
    put(&im, "SATM", 4);
    put_u32(&im, 1);
    put_u64(&im, 0); /* total size, below */
    section(&im, "SPEC", 8 + n);
    put_u64(&im, n);
    put(&im, spec, n);
    section(&im, "OPTS", 40);
    put_u32(&im, SAT_ACT_RELU);
    put_u32(&im, 0x7fc00000u); /* NaN: default parameter */
    put_u32(&im, (uint32_t)max_batch);
    put_u32(&im, (uint32_t)SAT_ACT_SAME);
    put_u32(&im, 0x7fc00000u);
    put_u32(&im, (uint32_t)SAT_ACT_SAME);
    put_u32(&im, 0x7fc00000u);
    put_u32(&im, SAT_BN_INFERENCE);
    put_u64(&im, 0);
    section(&im, "META", 28);
    put_u32(&im, SAT_NORM_LINF);
    put_u32(&im, 0x7fc00000u);
    put_u32(&im, SAT_TRAIN_STANDARD);
    put_u32(&im, 0);
    put_u32(&im, 0);
    put_u32(&im, 0x7fc00000u);
    put_u32(&im, 0x7fc00000u);
    section(&im, "PARM", 8);
    put_u64(&im, 0);
    section(&im, "BNST", 8);
    put_u64(&im, 0);
    uint64_t total = im.len + 4;
    for (int i = 0; i < 8; i++) im.p[8 + i] = (unsigned char)(total >> (8 * i));
    put_u32(&im, (uint32_t)crc32(crc32(0L, Z_NULL, 0), im.p, (uInt)im.len));
    tu_own(im.p, free); /* complete: from here on the test owns it */
    return im;
}

static void expect_spec_rejected(sat_context *ctx, const char *spec, int32_t max_batch,
                                 const char *needle) {
    sat_model_opts o;
    TU_CHECK(sat_model_opts_init(&o, sizeof o));
    o.max_batch = max_batch;
    sat_model *m = (sat_model *)&o; /* must be reset to NULL */
    int32_t st = sat_model_create(ctx, spec, &o, &m);
    assert_int_equal(st, SAT_E_INVALID_ARG);
    assert_null(m);
    if (!strstr(sat_last_error(), needle)) fail_msg("message \"%s\" lacks \"%s\"", sat_last_error(), needle);
}

/* A layer of more than 2^31-1 values per example: its size times the next dense layer's
 * units (ops.c dense_infer) or times max_batch (plan.c) overflowed int64, and flatten
 * truncated it to an int32 channel count (0 or negative), so "input 1 65536 65536 /
 * flatten / dense 2" built a model that ignored its input. Now the spec is refused. */
static void test_huge_layer_spec(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    /* dense_infer: 1048576 * 2^48 overflowed. */
    expect_spec_rejected(ctx, "input 65536 65536 65536\ndense 1048576\n", 2, "model spec line 1");
    /* sat__plan: max_batch 65536 * 2^48 overflowed. */
    expect_spec_rejected(ctx, "input 65536 65536 65536\ngap\n", 65536, "values per example");
    /* flatten: (int32_t)2^32 == 0, a dense layer with no inputs. */
    expect_spec_rejected(ctx, "input 1 65536 65536\nflatten\ndense 2\n", 2, "model spec line 1");
    /* (int32_t)(2 * 65536 * 49152) < 0: a negative parameter count. */
    expect_spec_rejected(ctx, "input 2 65536 49152\nflatten\ndense 2\n", 2, "more than 2147483647");
    /* A conv output that large is refused on its own line. */
    expect_spec_rejected(ctx, "input 1 65536 65536\nconv 2 k=1\ngap\n", 2, "model spec line 1");
    /* The largest size still allowed parses (the arena limit then refuses it cleanly). */
    sat_model *m = NULL;
    int32_t st = sat_model_create(ctx, "input 2 32768 32767\ngap\n", NULL, &m);
    assert_int_equal(st, SAT_E_SHAPE);
    assert_null(m);
    sat_model_destroy(m);
}

/* The same specs from a model file (max_batch 65536 in OPTS): SAT_E_FORMAT, no crash. */
static void test_huge_layer_model_file(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    const char *specs[] = {"input 65536 65536 65536\ngap\n", "input 1 65536 65536\nflatten\ndense 2\n",
                           "input 65536 65536 65536\ndense 1048576\n"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        image im = model_file(specs[i], 65536);
        sat_model *m = NULL;
        int32_t st = sat_model_load_buffer(ctx, im.p, im.len, NULL, &m);
        if (st != SAT_E_FORMAT)
            fail_msg("spec %zu: status %d (%s)", i, st, sat_last_error());
        assert_null(m);
        assert_true(strstr(sat_last_error(), "values per example") != NULL);
        tu_free(im.p);
    }
    /* The builder itself is sound: a small spec in the same framing loads. */
    image im = model_file("input 2 2 2\ngap\n", 4);
    sat_model *m = NULL;
    TU_CHECK(sat_model_load_buffer(ctx, im.p, im.len, NULL, &m));
    assert_non_null(m);
    sat_model_destroy(m);
}

/* A model file whose parameters make a SiLU layer's input NaN (finite but huge weights
 * overflow, and inf - inf is NaN): the SiLU's own exp built 2^n by shifting a negative
 * int32 left, undefined behaviour that UBSan reported (tests/fuzz/corpus/model_load/
 * crash-silu-nan-shift.satc). A NaN going in must come out NaN, forward and backward. */
static void test_silu_of_nan(void **state) {
    (void)state;
    sat_context *ctx = tu_context(1, 0);
    sat_model *m = tu_model(ctx, "input 1 2 2\nflatten\ndense 3\nact\ndense 2\n", SAT_ACT_SILU, 2);
    float *p = sat_model_params(m);
    for (int64_t i = 0; i < sat_model_param_count(m); i++) p[i] = NAN;
    const float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    const int32_t labels[2] = {0, 1};
    float logits[4], losses[2], g[8];
    TU_CHECK(sat_model_forward(m, x, 2, logits));
    for (int i = 0; i < 4; i++) assert_true(isnan(logits[i]));
    int32_t st = sat_model_input_gradient(m, x, labels, 2, losses, g, NULL);
    if (st != SAT_OK && st != SAT_E_NUMERIC) fail_msg("input gradient: status %d (%s)", st, sat_model_last_error(m));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_layer_spec),
        cmocka_unit_test(test_huge_layer_model_file),
        cmocka_unit_test(test_silu_of_nan),
    };
    return tu_run_group("test_regress_fuzz", tests, sizeof tests / sizeof tests[0]);
}
