/* spec.c - parses the text model spec into graph nodes.
 *
 * One layer per line; '#' starts a comment; `key=value` options; `name=` labels a layer's
 * output and `from=` reads another label instead of the previous line. The layer keyword
 * picks the op's table entry (ops.c), whose `parse` reads the rest of the line with the
 * helpers here. Every error names the line: "model spec line 4: unknown layer 'conv3'". */
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

int sat__parse_int(const char *s, long lo, long hi, int32_t *out) {
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

#define FAIL(...) return sat__fail(err, SAT_E_INVALID_ARG, __VA_ARGS__)

int sat__arg_is(const sat_arg *a, const char *key) { return a->key && strcmp(a->key, key) == 0; }

static int32_t bad_value(const sat_node *nd, const sat_arg *a, char *err) {
    FAIL("model spec line %d: bad value '%s' for %s", nd->line, a->val, a->key);
}

int32_t sat__arg_int(const sat_node *nd, const sat_arg *a, long lo, long hi, int32_t *out, char *err) {
    return sat__parse_int(a->val, lo, hi, out) ? SAT_OK : bad_value(nd, a, err);
}

int32_t sat__arg_positive(const sat_node *nd, const sat_arg *a, float *out, char *err) {
    return parse_float(a->val, out) && *out > 0 ? SAT_OK : bad_value(nd, a, err);
}

int32_t sat__arg_floats(const sat_node *nd, const sat_arg *a, float *out, int max, int positive, int *count,
                        char *err) {
    *count = parse_float_list(a->val, out, max);
    int ok = *count > 0;
    for (int j = 0; ok && positive && j < *count; j++) ok = out[j] > 0;
    return ok ? SAT_OK : bad_value(nd, a, err);
}

int32_t sat__arg_unknown(const sat_node *nd, const sat_arg *a, char *err) {
    if (a->key) FAIL("model spec line %d: unknown option '%s' for %s", nd->line, a->key, sat__ops[nd->op].name);
    FAIL("model spec line %d: unexpected argument '%s' for %s", nd->line, a->val, sat__ops[nd->op].name);
}

int sat__spec_label(const sat_model *m, const char *name) {
    for (int i = m->num_nodes - 1; i >= 0; i--)
        if (strcmp(m->nodes[i].name, name) == 0) return i;
    return -1;
}

static void node_defaults(sat_node *nd, int line) {
    memset(nd, 0, sizeof *nd);
    nd->in0 = nd->in1 = -1;
    nd->line = line;
    nd->p_w = nd->p_b = nd->p_gamma = nd->p_beta = nd->p_alpha = -1;
    nd->s_mean = nd->s_var = nd->k_mean = nd->k_std = -1;
}

/* The words of one layer line after its keyword: name= and from= here, the rest by the
 * op's table entry. */
static int32_t parse_layer(sat_model *m, sat_node *nd, tokens *t, char *err) {
    const int line = nd->line;
    sat_arg args[MAX_TOKENS];
    int32_t count = 0;
    for (int i = 1; i < t->count; i++) {
        char *tok = t->tok[i];
        char *eq = strchr(tok, '=');
        if (eq) *eq = '\0';
        const sat_arg a = {eq ? tok : NULL, eq ? eq + 1 : tok};
        if (sat__arg_is(&a, "name")) {
            if (!*a.val || strlen(a.val) >= SAT_NAME_MAX)
                FAIL("model spec line %d: name must have 1 to %d characters", line, SAT_NAME_MAX - 1);
            if (sat__spec_label(m, a.val) >= 0) FAIL("model spec line %d: name '%s' is used twice", line, a.val);
            snprintf(nd->name, sizeof nd->name, "%s", a.val);
        } else if (sat__arg_is(&a, "from")) {
            int src = sat__spec_label(m, a.val);
            if (src < 0) FAIL("model spec line %d: from unknown layer name '%s'", line, a.val);
            nd->in0 = src;
        } else {
            args[count++] = a;
        }
    }
    const sat_op_info *op = &sat__ops[nd->op];
    if (op->parse) return op->parse(m, nd, args, count, err);
    return count ? sat__arg_unknown(nd, &args[0], err) : SAT_OK;
}

int32_t sat__parse_spec(sat_model *m, const char *spec, char *err) {
    size_t cap = 16;
    m->nodes = sat__calloc(m->ctx, cap, sizeof(sat_node));
    if (!m->nodes) return sat__fail(err, SAT_E_NOMEM, "model spec: out of memory");
    m->num_nodes = 0;
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
        int32_t st = parse_layer(m, nd, &t, err);
        if (st) return st;
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
    if (last->size < 2 || last->size > SAT__MAX_UNITS)
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
