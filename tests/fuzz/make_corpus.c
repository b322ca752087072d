/* make_corpus.c - writes the seed corpus of the fuzz targets into DIR/<target>/:
 * small real model files and a checkpoint (model_load), spec texts covering every layer
 * and option (model_spec), IDX / gzip / CIFAR-10 inputs in the framing of
 * sat_fuzz_dataset (dataset), and trainer and model-and-optimizer checkpoints for the
 * handles of sat_fuzz_checkpoint (checkpoint). The committed corpus in tests/fuzz/corpus
 * was made with it (plus the reproducers the fuzzers found, kept under their own names).
 *
 *   sat_fuzz_make_corpus tests/fuzz/corpus
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_harness.h"
#include "sat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CKPT_SPEC "input 1 4 4\nconv 2 k=3 p=1\nbn\nact\nflatten\ndense 3\n"

static const char *root;

static void die(const char *what) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, sat_last_error());
    exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) die(path);
}

static void *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) die(path);
    fclose(f);
    *size = (size_t)n;
    return p;
}

static sat_model *model(sat_context *ctx, const char *spec, int32_t act, int32_t max_batch) {
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = act;
    o.max_batch = max_batch;
    sat_model *m = NULL;
    if (sat_model_create(ctx, spec, &o, &m) != SAT_OK) die(spec);
    return m;
}

static void save_model(sat_context *ctx, const char *name, const char *spec, int32_t act,
                       const sat_model_meta *meta) {
    sat_model *m = model(ctx, spec, act, 2);
    void *buf = NULL;
    size_t len = 0;
    if (sat_model_save_buffer(m, meta, &buf, &len) != SAT_OK) die(name);
    put("model_load", name, buf, len);
    sat_free(buf);
    sat_model_destroy(m);
}

static void *checkpoint_file(sat_context *ctx, int32_t kind, int32_t method, int optimizer_only, size_t *len);

static void model_corpus(sat_context *ctx) {
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    save_model(ctx, "mlp_relu.satm", "input 1 2 2\nflatten\ndense 2\n", SAT_ACT_RELU, NULL);
    save_model(ctx, "cnn_bn_silu.satm", CKPT_SPEC, SAT_ACT_SILU, NULL);
    meta.norm = SAT_NORM_L2;
    meta.eps = 0.5f;
    meta.method = SAT_TRAIN_TRADES;
    meta.steps = 3;
    meta.epochs = 2;
    meta.clean_accuracy = 0.75f;
    meta.robust_accuracy = 0.25f;
    save_model(ctx, "residual_meta.satm",
               "input 2 3 3\nconv 2 k=3 p=1 name=a\nbn\nact gelu\nconv 2 k=1 bias=0\nadd a\nact elu param=2\n"
               "gap\ndense 2\n",
               SAT_ACT_GELU, &meta);
    save_model(ctx, "pool_norm_smoothrelu.satm",
               "input 3 4 4 # comment\nnormalize mean=0.5,0.4,0.3 std=0.2\nconv 2 k=2 s=2\n"
               "act smoothrelu param=400\nmaxpool k=2\nflatten name=f\ndense 3 from=f\nact psoftplus\n"
               "dense 2\n",
               SAT_ACT_PSOFTPLUS, NULL);
    save_model(ctx, "avgpool_celu.satm", "input 1 3 3\navgpool k=2 s=1\nact celu param=0.5\nflatten\ndense 2 bias=0\n",
               SAT_ACT_CELU, NULL);

    /* A model file with an extra section of an unknown tag (readers skip it). */
    sat_model *m = model(ctx, "input 1 1 2\ndense 2\n", SAT_ACT_SOFTPLUS, 2);
    void *buf = NULL;
    size_t len = 0;
    if (sat_model_save_buffer(m, NULL, &buf, &len) != SAT_OK) die("unknown section");
    unsigned char *ext = malloc(len + 16);
    memcpy(ext, buf, len - 4);
    memcpy(ext + len - 4, "XTRA\x04\0\0\0\0\0\0\0abcd", 16);
    sat_fuzz_fix_frame(ext, len + 16);
    put("model_load", "unknown_section.satm", ext, len + 16);
    /* Damaged copies: a flipped byte (checksum) and a cut file. */
    memcpy(ext, buf, len);
    ext[len / 2] ^= 0x20;
    put("model_load", "damaged_crc.satm", ext, len);
    put("model_load", "truncated.satm", buf, len / 3);
    free(ext);
    sat_free(buf);
    sat_model_destroy(m);

    /* A checkpoint is also a model file. */
    void *ck = checkpoint_file(ctx, SAT_OPT_SGD, SAT_TRAIN_FREE, 0, &len);
    put("model_load", "free_at.satc", ck, len);
    free(ck);
}

/* The bytes of a checkpoint of CKPT_SPEC after one training step (the handles of
 * sat_fuzz_checkpoint match): a trainer checkpoint, or with optimizer_only a
 * model-and-optimizer checkpoint. Some learning-rate scales and freeze flags are set so
 * the settings section holds more than defaults. */
static void *checkpoint_file(sat_context *ctx, int32_t kind, int32_t method, int optimizer_only, size_t *len) {
    sat_model *m = model(ctx, CKPT_SPEC, SAT_ACT_SILU, 2);
    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.kind = kind;
    sat_optimizer *opt = NULL;
    if (sat_optimizer_create(m, &oo, &opt) != SAT_OK) die("optimizer");
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = method;
    sat_trainer *tr = NULL;
    if (sat_trainer_create(m, opt, &to, &tr) != SAT_OK) die("trainer");
    float x[2 * 16];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 32.0f;
    int32_t labels[2] = {0, 2};
    if (sat_train_step(tr, x, labels, 2, NULL) != SAT_OK) die("train step");
    uint8_t *frozen = calloc((size_t)sat_model_param_count(m), 1);
    if (!frozen) die("calloc");
    frozen[3] = 1;
    if (sat_optimizer_set_lr_scale(opt, 0, 5, 0.5f) != SAT_OK || sat_optimizer_set_frozen(opt, frozen) != SAT_OK)
        die("optimizer settings");
    free(frozen);
    char path[1024];
    snprintf(path, sizeof path, "%s/.ckpt.tmp", root);
    int32_t st = optimizer_only ? sat_optimizer_checkpoint_save(opt, NULL, path)
                                : sat_checkpoint_save(tr, NULL, 3, 5, path);
    if (st != SAT_OK) die("checkpoint");
    void *ck = slurp(path, len);
    remove(path);
    sat_trainer_destroy(tr);
    sat_optimizer_destroy(opt);
    sat_model_destroy(m);
    return ck;
}

static void checkpoint_corpus(sat_context *ctx) {
    static const struct {
        const char *name;
        int32_t kind, method;
        int optimizer_only;
    } files[] = {
        {"sgd_free_at.satc", SAT_OPT_SGD, SAT_TRAIN_FREE, 0},
        {"sgd_pgd.satc", SAT_OPT_SGD, SAT_TRAIN_PGD, 0},
        {"adam_free_at.satc", SAT_OPT_ADAM, SAT_TRAIN_FREE, 0},
        {"adam_pgd.satc", SAT_OPT_ADAM, SAT_TRAIN_PGD, 0},
        {"sgd_optimizer_only.satc", SAT_OPT_SGD, SAT_TRAIN_PGD, 1},
        {"adam_optimizer_only.satc", SAT_OPT_ADAM, SAT_TRAIN_PGD, 1},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len = 0;
        void *ck = checkpoint_file(ctx, files[i].kind, files[i].method, files[i].optimizer_only, &len);
        put("checkpoint", files[i].name, ck, len);
        free(ck);
    }
    /* A model file of the same spec: both loads refuse it. */
    sat_model *m = model(ctx, CKPT_SPEC, SAT_ACT_SILU, 2);
    void *buf = NULL;
    size_t len = 0;
    if (sat_model_save_buffer(m, NULL, &buf, &len) != SAT_OK) die("model file");
    put("checkpoint", "model_file.satm", buf, len);
    sat_free(buf);
    sat_model_destroy(m);
}

static void spec(const char *name, const char *text) { put("model_spec", name, text, strlen(text)); }

static void spec_corpus(void) {
    const char *presets[] = {"mlp", "madry-cnn", "small-cnn", "resnet20"};
    for (int i = 0; i < 4; i++) {
        char *s = NULL;
        float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
        if (sat_preset_spec(presets[i], i == 3 ? 3 : 1, 8, 8, 4, i == 3 ? mean : NULL, i == 3 ? sd : NULL,
                            &s) != SAT_OK)
            die(presets[i]);
        char name[64];
        snprintf(name, sizeof name, "preset_%s.txt", presets[i]);
        spec(name, s);
        sat_free(s);
    }
    spec("every_op.txt",
         "input 3 6 6\nnormalize mean=0.1,0.2,0.3 std=0.5,0.5,0.5\nconv 4 k=3 s=1 p=1 bias=1 name=c1\nbn\n"
         "act\nconv 4 k=3 p=1 bias=0\nbn\nadd c1\nact silu param=1.5\nmaxpool k=2 s=2\n"
         "avgpool k=2 s=1\ngap\nflatten\ndense 5 bias=0\nact gelu_tanh\ndense 3\n");
    spec("imagenet_ops.txt",
         "input 4 7 7\nmaxpool k=3 s=2 p=1 name=stem\nconv 4 k=3 p=1 g=4\ndropout p=0.1\ngap\nconv 2 k=1\n"
         "act\nconv 4 k=1\nsigmoid\nmul stem\nconv 4 k=3 s=2 p=1 g=2 bias=0\ndense 3\n");
    spec("mul_mismatch.txt", "input 2 4 4\ngap name=g\nconv 3 k=1 from=g\nmul g\ndense 2\n");
    spec("branches.txt",
         "input 1 4 4\nflatten name=in\ndense 4 name=a\nact relu\ndense 4 from=in name=b\nadd a\n"
         "act softplus\ndense 2\n");
    spec("activations.txt",
         "input 1 1 4\nact relu\nact softplus\nact psoftplus param=10\nact silu\nact swish\nact gelu\n"
         "act gelu_tanh\nact elu param=1\nact celu param=2\nact smoothrelu param=400\ndense 2\n");
    spec("comments_blank.txt", "# a model\n\ninput 1 2 2   # shape\n\tflatten\n\ndense 2 # out\n");
    spec("bad_layer.txt", "input 1 2 2\nconv3 4 k=3\ndense 2\n");
    spec("bad_shape.txt", "input 1 2 2\nconv 4 k=5\ndense 2\n");
    spec("add_mismatch.txt", "input 1 4 4\nconv 2 k=3 name=a\nconv 2 k=1\nadd a\nflatten\ndense 2\n");
    spec("large_dims.txt", "input 65536 65536 65536\ngap\n");
    spec("unused.txt", "input 1 2 2\ndense 4 name=x\ndense 3 from=x\n");
}

static void dataset_input(const char *name, unsigned mode, const void *images, size_t ni,
                          const void *labels, size_t nl) {
    size_t size = 3 + ni + nl;
    unsigned char *d = malloc(size);
    d[0] = (unsigned char)mode;
    d[1] = (unsigned char)(ni & 0xff);
    d[2] = (unsigned char)(ni >> 8);
    memcpy(d + 3, images, ni);
    memcpy(d + 3 + ni, labels, nl);
    put("dataset", name, d, size);
    free(d);
}

static void dataset_corpus(void) {
    /* 3 images of 4x5, labels 0..2. */
    unsigned char img[16 + 60], lab[8 + 3];
    const unsigned char ih[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5};
    const unsigned char lh[8] = {0, 0, 8, 1, 0, 0, 0, 3};
    memcpy(img, ih, 16);
    for (int i = 0; i < 60; i++) img[16 + i] = (unsigned char)(i * 37);
    memcpy(lab, lh, 8);
    lab[8] = 0, lab[9] = 1, lab[10] = 2;
    dataset_input("idx_plain", 0, img, sizeof img, lab, sizeof lab);
    dataset_input("idx_gz_both", 3, img, sizeof img, lab, sizeof lab);
    dataset_input("idx_gz_images", 1, img, sizeof img, lab, sizeof lab);
    /* Real gzip bytes written as they are: the fuzzer then mutates the compressed stream. */
    unsigned char gz[256];
    uLongf gl = sizeof gz;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = img;
    zs.avail_in = sizeof img;
    zs.next_out = gz;
    zs.avail_out = (uInt)gl;
    deflate(&zs, Z_FINISH);
    gl = zs.total_out;
    deflateEnd(&zs);
    dataset_input("idx_raw_gzip_stream", 0, gz, gl, lab, sizeof lab);
    /* Damaged: label 10, count mismatch, a header claiming 4096x4096 images. */
    lab[10] = 10;
    dataset_input("idx_bad_label", 0, img, sizeof img, lab, sizeof lab);
    lab[10] = 2;
    lab[7] = 4;
    dataset_input("idx_count_mismatch", 0, img, sizeof img, lab, sizeof lab);
    lab[7] = 3;
    unsigned char big[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 16, 0, 0, 0, 16, 0};
    dataset_input("idx_huge_claim_gz", 3, big, sizeof big, lab, sizeof lab);
    /* CIFAR-10: one and two records of 1 + 3072 bytes. */
    static unsigned char rec[2 * 3073];
    for (int i = 0; i < 2 * 3073; i++) rec[i] = (unsigned char)(i * 13);
    rec[0] = 3;
    rec[3073] = 9;
    dataset_input("cifar_one_record", 4, rec, 3073, "", 0);
    dataset_input("cifar_two_records", 4, rec, 2 * 3073, "", 0);
    dataset_input("cifar_partial_record", 4, rec, 3073 + 100, "", 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) die(root);
    sat_context *ctx = NULL;
    sat_context_opts co;
    sat_context_opts_init(&co, sizeof co);
    co.seed = 11;
    if (sat_context_create(&co, &ctx) != SAT_OK) die("context");
    model_corpus(ctx);
    checkpoint_corpus(ctx);
    spec_corpus();
    dataset_corpus();
    sat_context_destroy(ctx);
    return 0;
}
