/* spec.c - parses the text model spec into graph nodes.
 *
 * One layer per line; '#' starts a comment; `key=value` options; `name=` labels a layer's
 * output and `from=` reads another label instead of the previous line. Every error names
 * the line: "model spec line 4: unknown layer 'conv3'". */
#include "graph.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 16
#define MAX_LINE 4096
#define MAX_NODES 4096
#define MAX_UNITS (1 << 20)
#define MAX_CHANNELS 65536

typedef struct tokens {
    char buf[MAX_LINE];
    char *tok[MAX_TOKENS];
    int count;
} tokens;

static int split_line(tokens *t, const char *line, size_t len) {
    if (len >= MAX_LINE) return -1;
    memcpy(t->buf, line, len);
    t->buf[len] = '\0';
    char *hash = strchr(t->buf, '#');
    if (hash) *hash = '\0';
    t->count = 0;
    char *p = t->buf;
    while (*p) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (t->count == MAX_TOKENS) return -2;
        t->tok[t->count++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
    }
    return 0;
}

static int parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int32_t)v;
    return 1;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* A comma-separated list of up to `max` floats. */
static int parse_float_list(const char *s, float *out, int max) {
    char tmp[MAX_LINE];
    snprintf(tmp, sizeof tmp, "%s", s);
    int count = 0;
    for (char *save = NULL, *p = strtok_r(tmp, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (count == max || !parse_float(p, &out[count])) return -1;
        count++;
    }
    return count;
}

static int find_label(const sat_model *m, const char *name) {
    for (int i = m->num_nodes - 1; i >= 0; i--)
        if (strcmp(m->nodes[i].name, name) == 0) return i;
    return -1;
}

static void node_defaults(sat_node *nd, int line) {
    memset(nd, 0, sizeof *nd);
    nd->in0 = nd->in1 = -1;
    nd->line = line;
    nd->stride = 1;
    nd->has_bias = 1;
    nd->act = -1;
    nd->act_param = NAN;
    nd->p_w = nd->p_b = nd->p_gamma = nd->p_beta = nd->p_alpha = -1;
    nd->s_mean = nd->s_var = nd->k_mean = nd->k_std = -1;
}

#define FAIL(...) return sat__fail(err, SAT_E_INVALID_ARG, __VA_ARGS__)

/* Parses the options of one layer line (tokens from index 1) into nd. */
static int32_t parse_layer(sat_model *m, sat_node *nd, tokens *t, float *norm_mean,
                           float *norm_std, int *norm_counts, char *err) {
    int line = nd->line;
    int positional = 0;
    for (int i = 1; i < t->count; i++) {
        char *tok = t->tok[i];
        char *eq = strchr(tok, '=');
        if (!eq) {
            /* positional arguments */
            switch (nd->op) {
            case SAT_OP_INPUT: {
                int32_t *dst[3] = {&nd->c, &nd->h, &nd->w};
                if (positional >= 3 || !parse_int(tok, 1, MAX_CHANNELS, dst[positional]))
                    FAIL("model spec line %d: input needs three positive sizes C H W, got '%s'",
                         line, tok);
                break;
            }
            case SAT_OP_DENSE:
            case SAT_OP_CONV:
                if (positional || !parse_int(tok, 1, MAX_UNITS, &nd->units))
                    FAIL("model spec line %d: %s needs one positive output size, got '%s'", line,
                         sat__ops[nd->op].name, tok);
                break;
            case SAT_OP_ACT:
                if (positional || sat__act_from_name(tok, &nd->act) != SAT_OK)
                    FAIL("model spec line %d: unknown activation '%s'", line, tok);
                break;
            case SAT_OP_ADD: {
                int src = positional ? -1 : find_label(m, tok);
                if (src < 0) FAIL("model spec line %d: add of unknown layer name '%s'", line, tok);
                nd->in1 = src;
                break;
            }
            default:
                FAIL("model spec line %d: unexpected argument '%s' for %s", line, tok,
                     sat__ops[nd->op].name);
            }
            positional++;
            continue;
        }
        *eq = '\0';
        const char *key = tok, *val = eq + 1;
        int ok = 1;
        if (strcmp(key, "name") == 0) {
            if (!*val || strlen(val) >= SAT_NAME_MAX)
                FAIL("model spec line %d: name must have 1 to %d characters", line, SAT_NAME_MAX - 1);
            if (find_label(m, val) >= 0)
                FAIL("model spec line %d: name '%s' is used twice", line, val);
            snprintf(nd->name, sizeof nd->name, "%s", val);
        } else if (strcmp(key, "from") == 0) {
            int src = find_label(m, val);
            if (src < 0) FAIL("model spec line %d: from unknown layer name '%s'", line, val);
            nd->in0 = src;
        } else if (strcmp(key, "k") == 0 &&
                   (nd->op == SAT_OP_CONV || nd->op == SAT_OP_MAXPOOL || nd->op == SAT_OP_AVGPOOL)) {
            ok = parse_int(val, 1, 64, &nd->k);
        } else if (strcmp(key, "s") == 0 &&
                   (nd->op == SAT_OP_CONV || nd->op == SAT_OP_MAXPOOL || nd->op == SAT_OP_AVGPOOL)) {
            ok = parse_int(val, 1, 64, &nd->stride);
        } else if (strcmp(key, "p") == 0 && nd->op == SAT_OP_CONV) {
            ok = parse_int(val, 0, 64, &nd->pad);
        } else if (strcmp(key, "bias") == 0 && (nd->op == SAT_OP_CONV || nd->op == SAT_OP_DENSE)) {
            ok = parse_int(val, 0, 1, &nd->has_bias);
        } else if (strcmp(key, "param") == 0 && nd->op == SAT_OP_ACT) {
            ok = parse_float(val, &nd->act_param) && nd->act_param > 0;
        } else if ((strcmp(key, "mean") == 0 || strcmp(key, "std") == 0) && nd->op == SAT_OP_NORMALIZE) {
            int is_mean = key[0] == 'm';
            int cnt = parse_float_list(val, is_mean ? norm_mean : norm_std, 64);
            ok = cnt > 0;
            if (ok && !is_mean)
                for (int j = 0; j < cnt; j++) ok = ok && norm_std[j] > 0;
            norm_counts[is_mean ? 0 : 1] = cnt;
        } else {
            FAIL("model spec line %d: unknown option '%s' for %s", line, key, sat__ops[nd->op].name);
        }
        if (!ok) FAIL("model spec line %d: bad value '%s' for %s", line, val, key);
    }
    if (nd->op == SAT_OP_INPUT && positional != 3)
        FAIL("model spec line %d: input needs three positive sizes C H W", line);
    if ((nd->op == SAT_OP_DENSE || nd->op == SAT_OP_CONV) && nd->units == 0)
        FAIL("model spec line %d: %s needs an output size", line, sat__ops[nd->op].name);
    if (nd->op == SAT_OP_CONV && nd->k == 0) FAIL("model spec line %d: conv needs k=K", line);
    if ((nd->op == SAT_OP_MAXPOOL || nd->op == SAT_OP_AVGPOOL) && nd->k == 0)
        FAIL("model spec line %d: %s needs k=K", line, sat__ops[nd->op].name);
    if (nd->op == SAT_OP_ADD && nd->in1 < 0) FAIL("model spec line %d: add needs a layer name", line);
    return SAT_OK;
}

int32_t sat__parse_spec(sat_model *m, const char *spec, char *err) {
    size_t cap = 16;
    m->nodes = sat__calloc(m->ctx, cap, sizeof(sat_node));
    if (!m->nodes) return sat__fail(err, SAT_E_NOMEM, "model spec: out of memory");
    m->num_nodes = 0;
    float mean[64], stdv[64];
    int norm_counts[2];
    tokens t;
    int line = 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        line++;
        int sr = split_line(&t, p, len);
        p += len + (end ? 1 : 0);
        if (sr == -1) FAIL("model spec line %d: line longer than %d characters", line, MAX_LINE - 1);
        if (sr == -2) FAIL("model spec line %d: more than %d words", line, MAX_TOKENS);
        if (t.count == 0) continue;
        int op = -1;
        for (int i = 0; i < SAT_OP_COUNT; i++)
            if (strcmp(t.tok[0], sat__ops[i].name) == 0) op = i;
        if (op < 0) FAIL("model spec line %d: unknown layer '%s'", line, t.tok[0]);
        if ((m->num_nodes == 0) != (op == SAT_OP_INPUT))
            FAIL("model spec line %d: %s", line,
                 op == SAT_OP_INPUT ? "input may only be the first layer"
                                    : "the first layer must be 'input C H W'");
        if (m->num_nodes == MAX_NODES) FAIL("model spec line %d: more than %d layers", line, MAX_NODES);
        if ((size_t)m->num_nodes == cap) {
            sat_node *bigger = sat__calloc(m->ctx, cap * 2, sizeof(sat_node));
            if (!bigger) return sat__fail(err, SAT_E_NOMEM, "model spec: out of memory");
            memcpy(bigger, m->nodes, cap * sizeof(sat_node));
            sat__dealloc(m->ctx, m->nodes);
            m->nodes = bigger;
            cap *= 2;
        }
        sat_node *nd = &m->nodes[m->num_nodes];
        node_defaults(nd, line);
        nd->op = op;
        if (op != SAT_OP_INPUT) nd->in0 = m->num_nodes - 1;
        norm_counts[0] = norm_counts[1] = 0;
        int32_t st = parse_layer(m, nd, &t, mean, stdv, norm_counts, err);
        if (st) return st;
        if ((op == SAT_OP_MAXPOOL || op == SAT_OP_AVGPOOL)) {
            int has_s = 0;
            for (int i = 1; i < t.count; i++) has_s |= strncmp(t.tok[i], "s=", 2) == 0;
            if (!has_s) nd->stride = nd->k;
        }
        if (op == SAT_OP_NORMALIZE) {
            int c = m->nodes[nd->in0].c;
            for (int j = 0; j < 2; j++)
                if (norm_counts[j] != 1 && norm_counts[j] != c)
                    FAIL("model spec line %d: normalize needs %s with 1 or %d values, got %d", line,
                         j ? "std" : "mean", c, norm_counts[j]);
            if (c > 64) FAIL("model spec line %d: normalize supports at most 64 channels", line);
            nd->k_mean = m->num_consts;
            nd->k_std = m->num_consts + c;
            float *consts = sat__alloc(m->ctx, sizeof(float) * (size_t)(m->num_consts + 2 * c));
            if (!consts) return sat__fail(err, SAT_E_NOMEM, "model spec: out of memory");
            if (m->consts) memcpy(consts, m->consts, sizeof(float) * (size_t)m->num_consts);
            for (int ch = 0; ch < c; ch++) {
                consts[nd->k_mean + ch] = mean[norm_counts[0] == 1 ? 0 : ch];
                consts[nd->k_std + ch] = stdv[norm_counts[1] == 1 ? 0 : ch];
            }
            sat__dealloc(m->ctx, m->consts);
            m->consts = consts;
            m->num_consts += 2 * c;
        }
        st = sat__ops[op].infer(m, nd, err);
        if (st) return st;
        nd->size = (int64_t)nd->c * nd->h * nd->w;
        /* Later layers multiply this size by their units and the batch (int64), and
         * flatten stores it as an int32 channel count. */
        if (nd->size > INT32_MAX)
            FAIL("model spec line %d: %s gives %lld values per example, more than %d", line,
                 sat__ops[op].name, (long long)nd->size, INT32_MAX);
        if (nd->in0 >= 0) m->nodes[nd->in0].consumers++;
        if (nd->in1 >= 0) m->nodes[nd->in1].consumers++;
        m->num_nodes++;
        if (m->num_params > ((int64_t)1 << 31))
            FAIL("model spec line %d: more than 2^31 parameters", line);
    }
    if (m->num_nodes < 2) FAIL("model spec: needs an input line and at least one layer");
    const sat_node *last = &m->nodes[m->num_nodes - 1];
    if (last->size < 2 || last->size > MAX_UNITS)
        FAIL("model spec line %d: the last layer gives %lld outputs; it must give one per class (at "
             "least 2)", last->line, (long long)last->size);
    for (int i = 0; i < m->num_nodes - 1; i++)
        if (m->nodes[i].consumers == 0)
            FAIL("model spec line %d: the output of this layer is never used", m->nodes[i].line);
    m->in_c = m->nodes[0].c;
    m->in_h = m->nodes[0].h;
    m->in_w = m->nodes[0].w;
    m->in_size = m->nodes[0].size;
    m->classes = (int32_t)last->size;
    return SAT_OK;
}
