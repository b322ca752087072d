/* test_model_init.c - initial parameters are pinned: for a fixed seed, every preset and a
 * spec that uses every op and attribute give the same parameters and batch-norm state as
 * the values recorded below (FNV-1a over the bytes of both blocks). A change of the
 * initialisers, of the spec parser's attributes or of the parameter layout fails here.
 * Also the attributes that shape a layer without parameters (the pooling stride). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes) {
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Hash of the initial parameters and state of spec under activation act and seed. */
static uint64_t init_hash(const char *spec, int32_t act, uint64_t seed, int64_t *count) {
    sat_context *ctx = tu_context(1, 0);
    sat_model_opts o;
    TU_CHECK(sat_model_opts_init(&o, sizeof o));
    o.activation = act;
    o.max_batch = 2;
    o.seed = seed;
    sat_model *m = NULL;
    TU_CHECK(sat_model_create(ctx, spec, &o, &m));
    tu_own_model(m);
    const int64_t np = sat_model_param_count(m), ns = sat_model_state_count(m);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, sat_model_params(m), sizeof(float) * (size_t)np);
    h = fnv1a(h, sat_model_state(m), sizeof(float) * (size_t)ns);
    *count = np + ns;
    return h;
}

typedef struct pinned {
    const char *preset; /* NULL: every_op below */
    int32_t act;
    int64_t count;      /* parameters + state values */
    uint64_t hash;
} pinned;

/* Every op and attribute the spec language has. */
static const char every_op[] =
    "input 3 12 12\n"
    "normalize mean=0.5,0.4,0.3 std=0.2\n"
    "conv 8 k=3 s=1 p=1 bias=1\n"
    "bn\n"
    "act smoothrelu param=300 name=a\n"
    "conv 8 k=1 bias=0\n"
    "act softplus param=5\n"
    "add a\n"
    "maxpool k=2 s=2\n"
    "conv 6 k=3 s=2 p=0\n"
    "act\n"
    "avgpool k=2 s=1\n"
    "flatten\n"
    "dense 7 bias=0\n"
    "act gelu\n"
    "dense 5\n";

static const pinned cases[] = {
    {"mlp", SAT_ACT_RELU, 855050, 0x4d2cdfd4e7b97a3dull},
    {"madry-cnn", SAT_ACT_SILU, 4259274, 0xe20bfaba4f1de561ull},
    {"small-cnn", SAT_ACT_SMOOTHRELU, 211001, 0x5750d61e24bc0f6full},
    {"resnet20", SAT_ACT_SMOOTHRELU, 274061, 0x720bf90e4025333cull},
    {NULL, SAT_ACT_ELU, 841, 0x807a718f85dca727ull},
};

static void test_initial_params_are_pinned(void **st) {
    (void)st;
    const float mean[3] = {0.49f, 0.48f, 0.45f}, stdv[3] = {0.25f, 0.24f, 0.26f};
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pinned *c = &cases[i];
        char *spec = NULL;
        if (c->preset) {
            TU_CHECK(sat_preset_spec(c->preset, 3, 32, 32, 10, mean, stdv, &spec));
            tu_own_sat_mem(spec);
        }
        int64_t count = 0;
        const uint64_t h = init_hash(c->preset ? spec : every_op, c->act, 1234567, &count);
        if (h != c->hash || count != c->count) {
            printf("%s (act %d): %lld values, hash 0x%016llx; pinned %lld, 0x%016llx\n",
                   c->preset ? c->preset : "every_op", c->act, (long long)count, (unsigned long long)h,
                   (long long)c->count, (unsigned long long)c->hash);
            failed = 1;
        }
    }
    assert_false(failed);
}

/* Pooling takes its stride from s=, and k when s= is absent: the output size shows in the
 * parameter count of the dense layer after it. */
static void test_pool_stride(void **st) {
    (void)st;
    sat_context *ctx = tu_context(1, 0);
    const char *specs[4] = {"input 1 5 5\nmaxpool k=3 s=1\nflatten\ndense 2\n",
                            "input 1 5 5\nmaxpool k=3\nflatten\ndense 2\n",
                            "input 1 6 6\navgpool k=2 s=1\nflatten\ndense 2\n",
                            "input 1 6 6\navgpool k=2\nflatten\ndense 2\n"};
    const int64_t inputs[4] = {3 * 3, 1, 5 * 5, 3 * 3};
    for (int i = 0; i < 4; i++) {
        sat_model *m = tu_model(ctx, specs[i], SAT_ACT_RELU, 1);
        assert_int_equal(sat_model_param_count(m), 2 * inputs[i] + 2);
    }
}

/* The pin is not blind: another seed changes the hash. */
static void test_seed_changes_params(void **st) {
    (void)st;
    int64_t n1 = 0, n2 = 0;
    assert_true(init_hash(every_op, SAT_ACT_ELU, 1, &n1) != init_hash(every_op, SAT_ACT_ELU, 2, &n2));
    assert_true(n1 == n2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_params_are_pinned),
        cmocka_unit_test(test_seed_changes_params),
        cmocka_unit_test(test_pool_stride),
    };
    return tu_run_group("model_init", tests, sizeof tests / sizeof tests[0]);
}
