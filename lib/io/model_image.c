/* model_image.c - the sections every libsat file holds (spec, options, meta, parameters,
 * batch-norm statistics): writing them, checking them, and building a model from them.
 *
 * Decoding only points into the file's bytes and checks every length, limit and value, so
 * a hostile file is rejected before anything is allocated; building parses the stored
 * spec once without allocating its blocks, to compare its parameter and state counts with
 * the stored ones before the model (and its arena) is allocated. */
#include "io/io.h"

#include <math.h>
#include <string.h>

/* ---- meta ---- */

sat_model_meta sat__meta_defaults(void) {
    /* Nothing recorded: no threat model (eps NaN), unknown accuracies. */
    sat_model_meta d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.norm = SAT_NORM_LINF;
    d.eps = NAN;
    d.method = SAT_TRAIN_STANDARD;
    d.steps = 0;
    d.epochs = 0;
    d.clean_accuracy = NAN;
    d.robust_accuracy = NAN;
    return d;
}

int32_t sat_model_meta_init(sat_model_meta *meta, uint32_t struct_size) {
    sat__clear_tls_error();
    sat_model_meta d = sat__meta_defaults();
    return sat__opts_init(meta, struct_size, &d, sizeof d, "sat_model_meta_init");
}

static int accuracy_ok(float a) { return isnan(a) || (a >= 0.0f && a <= 1.0f); }

static int32_t meta_check(const sat_model_meta *m, const char *what, char *err) {
    if (m->norm != SAT_NORM_LINF && m->norm != SAT_NORM_L2)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown norm %d", what, m->norm);
    if (!(isnan(m->eps) || (isfinite(m->eps) && m->eps >= 0.0f)))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: eps must be NaN (unknown) or finite and >= 0",
                         what);
    if (m->method < SAT_TRAIN_STANDARD || m->method > SAT_TRAIN_TRADES)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown training method %d", what, m->method);
    if (m->steps < 0 || m->epochs < 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: steps and epochs must be >= 0", what);
    if (!accuracy_ok(m->clean_accuracy) || !accuracy_ok(m->robust_accuracy))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: accuracies must be NaN (unknown) or in [0,1]",
                         what);
    return SAT_OK;
}

int32_t sat__meta_import(const sat_model_meta *meta, sat_model_meta *out, char *err) {
    sat_model_meta m = sat__meta_defaults();
    if (meta) {
        int32_t st = sat__opts_copy(&m, sizeof m, meta, "sat_model_meta", err);
        if (st) return st;
        st = meta_check(&m, "sat_model_meta", err);
        if (st) return st;
    }
    *out = m;
    return SAT_OK;
}

void sat__meta_export(const sat_model_meta *stored, sat_model_meta *meta) {
    uint32_t size = meta->struct_size;
    size_t n = size < sizeof *stored ? size : sizeof *stored;
    memcpy(meta, stored, n);
    meta->struct_size = size;
}

/* ---- writing ---- */

static void put_i32(sat__wbuf *b, int32_t v) { sat__wb_u32(b, (uint32_t)v); }

void sat__wb_model_sections(sat__wbuf *b, const sat_model *m, const sat_model_meta *meta) {
    size_t len = strlen(m->spec);
    size_t mark = sat__wb_section_begin(b, SAT__TAG_SPEC);
    sat__wb_u64(b, len);
    sat__wb_bytes(b, m->spec, len);
    sat__wb_section_end(b, mark);

    /* Field by field, never the raw struct: layout and padding are the compiler's. */
    const sat_model_opts *o = &m->opts;
    mark = sat__wb_section_begin(b, SAT__TAG_OPTS);
    put_i32(b, o->activation);
    sat__wb_f32(b, o->act_param);
    put_i32(b, o->max_batch);
    put_i32(b, o->attack_backward_act);
    sat__wb_f32(b, o->attack_backward_param);
    put_i32(b, o->train_backward_act);
    sat__wb_f32(b, o->train_backward_param);
    put_i32(b, o->attack_bn_mode);
    sat__wb_u64(b, o->seed);
    sat__wb_section_end(b, mark);

    mark = sat__wb_section_begin(b, SAT__TAG_META);
    put_i32(b, meta->norm);
    sat__wb_f32(b, meta->eps);
    put_i32(b, meta->method);
    put_i32(b, meta->steps);
    put_i32(b, meta->epochs);
    sat__wb_f32(b, meta->clean_accuracy);
    sat__wb_f32(b, meta->robust_accuracy);
    sat__wb_section_end(b, mark);

    mark = sat__wb_section_begin(b, SAT__TAG_PARM);
    sat__wb_u64(b, (uint64_t)m->num_params);
    sat__wb_floats(b, m->params, m->num_params);
    sat__wb_section_end(b, mark);

    mark = sat__wb_section_begin(b, SAT__TAG_BNST);
    sat__wb_u64(b, (uint64_t)m->num_state);
    sat__wb_floats(b, m->state, m->num_state);
    sat__wb_section_end(b, mark);
}

/* ---- reading ---- */

static int32_t rd_i32(const unsigned char *p) { return (int32_t)sat__rd_u32(p); }

/* Strict UTF-8: no overlong forms, surrogates or values past U+10FFFF; no NUL (the spec
 * becomes a C string). Returns the offset of the first bad byte, or n. */
static size_t utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else
            return i;
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return i;
        i += len;
    }
    return n;
}

static const sat__section *need(const sat__image *img, uint32_t tag, const char *name,
                                 const char *what, char *err) {
    const sat__section *s = sat__image_find(img, tag);
    if (!s) sat__fail(err, SAT_E_FORMAT, "%s: the %s section is missing", what, name);
    return s;
}

/* A float block: u64 count, then count floats, filling the section exactly. The count is
 * compared with the bytes present, so a huge claimed count is rejected here. */
static int32_t float_block(const sat__section *s, const char *name, const char *what,
                           int64_t *count, const unsigned char **data, char *err) {
    if (s->len < 8)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s section is %llu bytes, too short for its count",
                         what, name, (unsigned long long)s->len);
    uint64_t n = sat__rd_u64(s->data);
    if (n > (s->len - 8) / 4 || (s->len - 8) % 4 != 0 || n != (s->len - 8) / 4)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s section claims %llu values but holds %llu bytes",
                         what, name, (unsigned long long)n, (unsigned long long)(s->len - 8));
    int64_t bad = sat__rd_first_nonfinite(s->data + 8, (int64_t)n);
    if (bad >= 0)
        return sat__fail(err, SAT_E_FORMAT, "%s: %s value %lld is NaN or Inf", what, name,
                         (long long)bad);
    *count = (int64_t)n;
    *data = s->data + 8;
    return SAT_OK;
}

int32_t sat__model_image_decode(const sat__image *img, const char *what, sat__model_image *mi,
                                char *err) {
    memset(mi, 0, sizeof *mi);
    const sat__section *spec = need(img, SAT__TAG_SPEC, "spec", what, err);
    const sat__section *opts = spec ? need(img, SAT__TAG_OPTS, "options", what, err) : NULL;
    const sat__section *meta = opts ? need(img, SAT__TAG_META, "meta", what, err) : NULL;
    const sat__section *parm = meta ? need(img, SAT__TAG_PARM, "parameters", what, err) : NULL;
    const sat__section *bnst = parm ? need(img, SAT__TAG_BNST, "batch-norm state", what, err) : NULL;
    if (!bnst) return SAT_E_FORMAT;

    if (spec->len < 8)
        return sat__fail(err, SAT_E_FORMAT, "%s: spec section too short", what);
    uint64_t len = sat__rd_u64(spec->data);
    if (len > SAT__MAX_SPEC_LEN)
        return sat__fail(err, SAT_E_FORMAT, "%s: spec of %llu bytes is over the 1 MiB limit", what,
                         (unsigned long long)len);
    if (len != spec->len - 8)
        return sat__fail(err, SAT_E_FORMAT, "%s: spec claims %llu bytes but its section holds %llu",
                         what, (unsigned long long)len, (unsigned long long)(spec->len - 8));
    size_t bad = utf8_check(spec->data + 8, (size_t)len);
    if (bad != len)
        return sat__fail(err, SAT_E_FORMAT, "%s: spec byte %zu is not valid UTF-8 text", what, bad);
    mi->spec = (const char *)spec->data + 8;
    mi->spec_len = (size_t)len;

    if (opts->len != SAT__OPTS_SIZE)
        return sat__fail(err, SAT_E_FORMAT, "%s: options section is %llu bytes, expected %u", what,
                         (unsigned long long)opts->len, SAT__OPTS_SIZE);
    const unsigned char *p = opts->data;
    sat_model_opts *o = &mi->opts;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->activation = rd_i32(p);
    o->act_param = sat__rd_f32(p + 4);
    o->max_batch = rd_i32(p + 8);
    o->attack_backward_act = rd_i32(p + 12);
    o->attack_backward_param = sat__rd_f32(p + 16);
    o->train_backward_act = rd_i32(p + 20);
    o->train_backward_param = sat__rd_f32(p + 24);
    o->attack_bn_mode = rd_i32(p + 28);
    o->seed = sat__rd_u64(p + 32);
    /* The rest is checked by the model builder; parsing the spec needs these. */
    if (o->activation < 0 || o->activation >= SAT_ACT_COUNT)
        return sat__fail(err, SAT_E_FORMAT, "%s: stored activation %d is unknown", what, o->activation);
    if (!isnan(o->act_param) && !(isfinite(o->act_param) && o->act_param > 0))
        return sat__fail(err, SAT_E_FORMAT, "%s: stored activation parameter is not positive", what);

    if (meta->len != SAT__META_SIZE)
        return sat__fail(err, SAT_E_FORMAT, "%s: meta section is %llu bytes, expected %u", what,
                         (unsigned long long)meta->len, SAT__META_SIZE);
    p = meta->data;
    sat_model_meta *mt = &mi->meta;
    *mt = sat__meta_defaults();
    mt->norm = rd_i32(p);
    mt->eps = sat__rd_f32(p + 4);
    mt->method = rd_i32(p + 8);
    mt->steps = rd_i32(p + 12);
    mt->epochs = rd_i32(p + 16);
    mt->clean_accuracy = sat__rd_f32(p + 20);
    mt->robust_accuracy = sat__rd_f32(p + 24);
    char merr[SAT_ERRMSG_SIZE];
    if (meta_check(mt, "meta", merr))
        return sat__fail(err, SAT_E_FORMAT, "%s: stored %s", what, merr);

    int32_t st = float_block(parm, "parameter", what, &mi->num_params, &mi->params, err);
    if (st) return st;
    return float_block(bnst, "batch-norm state", what, &mi->num_state, &mi->state, err);
}

/* Parameter and state counts of a spec, without allocating the model's blocks. */
static int32_t spec_counts(sat_context *ctx, const char *spec, const sat_model_opts *opts,
                           int64_t *num_params, int64_t *num_state, char *err) {
    sat_model probe;
    memset(&probe, 0, sizeof probe);
    probe.ctx = ctx;
    probe.opts = *opts;
    probe.max_batch = opts->max_batch;
    int32_t st = sat__parse_spec(&probe, spec, err);
    sat__dealloc(ctx, probe.nodes);
    sat__dealloc(ctx, probe.consts);
    *num_params = probe.num_params;
    *num_state = probe.num_state;
    return st;
}

int32_t sat__model_from_image(sat_context *ctx, const sat__model_image *mi, const char *what,
                              sat_model **out, char *err) {
    *out = NULL;
    char *spec = sat__alloc(ctx, mi->spec_len + 1);
    if (!spec) return sat__fail(err, SAT_E_NOMEM, "%s: out of memory", what);
    memcpy(spec, mi->spec, mi->spec_len);
    spec[mi->spec_len] = '\0';

    char perr[SAT_ERRMSG_SIZE];
    int64_t np = 0, ns = 0;
    int32_t st = spec_counts(ctx, spec, &mi->opts, &np, &ns, perr);
    if (st == SAT_E_INVALID_ARG) st = SAT_E_FORMAT;
    if (st) {
        sat__dealloc(ctx, spec);
        return sat__fail(err, st, "%s: stored %s", what, perr);
    }
    if (np != mi->num_params || ns != mi->num_state) {
        sat__dealloc(ctx, spec);
        return sat__fail(err, SAT_E_FORMAT,
                         "%s: the stored spec has %lld parameters and %lld state values, the file "
                         "holds %lld and %lld", what, (long long)np, (long long)ns,
                         (long long)mi->num_params, (long long)mi->num_state);
    }

    sat_model *m = NULL;
    st = sat__model_build(ctx, spec, &mi->opts, &m);
    sat__dealloc(ctx, spec);
    if (st) {
        if (st == SAT_E_INVALID_ARG) st = SAT_E_FORMAT;
        return sat__fail(err, st, "%s: stored model: %s", what, sat_last_error());
    }
    if (m->num_params != mi->num_params || m->num_state != mi->num_state) {
        sat__model_free(m); /* just built: no children yet */
        return sat__fail(err, SAT_E_INTERNAL, "%s: model counts differ from the spec's", what);
    }
    sat__rd_floats(m->params, mi->params, m->num_params);
    sat__rd_floats(m->state, mi->state, m->num_state);
    *out = m;
    return SAT_OK;
}

int32_t sat__model_image_match(const sat__model_image *mi, const sat_model *m, const char *what, char *err) {
    if (mi->spec_len != strlen(m->spec) || memcmp(mi->spec, m->spec, mi->spec_len) != 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: the checkpoint's model spec differs from the handle's model",
                         what);
    if (mi->num_params != m->num_params || mi->num_state != m->num_state)
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: %lld parameters and %lld state values, the model has %lld and %lld", what,
                         (long long)mi->num_params, (long long)mi->num_state, (long long)m->num_params,
                         (long long)m->num_state);
    return SAT_OK;
}
