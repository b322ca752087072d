/* eval.c - robustness evaluation: clean accuracy, accuracy under PGD-k for a list of k,
 * FGSM and optionally APGD-CE + APGD-T, plus flags that point at gradient masking
 * (Athalye et al., arXiv 1802.00420): zero or non-finite input gradients, a robust
 * accuracy that still falls between the two largest k, and a one-step attack that beats
 * the multi-step ones. Accuracies are measured with batch norm in inference mode (the
 * deployed model); an example counts as robust only if it is also correct when clean. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

static sat_eval_opts eval_defaults(void) {
    sat_eval_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.norm = SAT_NORM_LINF;
    d.eps = 8.0f / 255.0f;
    d.step_size = 0.0f; /* automatic */
    d.num_steps = 3;
    d.steps[0] = 1;
    d.steps[1] = 10;
    d.steps[2] = 20;
    d.restarts = 1;
    d.apgd = 0;
    d.apgd_steps = 100;
    d.apgd_targets = 3;
    d.batch = 0;
    d.seed = SAT_SEED_CONTEXT;
    return d;
}

int32_t sat_eval_opts_init(sat_eval_opts *opts, uint32_t struct_size) {
    sat_eval_opts d = eval_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_eval_opts_init");
}

static int32_t check_eval_opts(const sat__target *m, const sat_eval_opts *o) {
    static const char *const what = "sat_eval_opts";
    char *err = m->err;
    if (o->norm != SAT_NORM_LINF && o->norm != SAT_NORM_L2)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: unknown norm %d", what, o->norm);
    const double eps_max = o->norm == SAT_NORM_LINF ? 1.0 : sqrt((double)m->in_size);
    if (!(o->eps >= 0.0f && (double)o->eps <= eps_max))
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: eps %g is not in [0, %g]", what, (double)o->eps,
                         eps_max);
    if (!(isfinite(o->step_size) && o->step_size >= 0.0f))
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "%s: step_size %g must be finite and > 0 (or 0 for the automatic step)",
                         what, (double)o->step_size);
    if (o->restarts < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: restarts %d must be at least 1", what, o->restarts);
    if (o->num_steps < 1 || o->num_steps > SAT_EVAL_MAX_STEPS)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: num_steps %d is not in 1..%d", what, o->num_steps,
                         SAT_EVAL_MAX_STEPS);
    for (int32_t i = 0; i < o->num_steps; i++)
        if (o->steps[i] < 1)
            return sat__fail(err, SAT_E_INVALID_ARG, "%s: steps[%d] = %d must be at least 1", what, i,
                             o->steps[i]);
    if (o->apgd != 0 && o->apgd != 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: apgd %d is not 0 or 1", what, o->apgd);
    if (o->apgd && o->apgd_steps < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: apgd_steps %d must be at least 1", what,
                         o->apgd_steps);
    if (o->apgd && o->apgd_targets < 1)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: apgd_targets %d must be at least 1", what,
                         o->apgd_targets);
    if (o->batch < 0)
        return sat__fail(err, SAT_E_INVALID_ARG, "%s: batch %d is negative", what, o->batch);
    return SAT_OK;
}

/* Attack options for one measurement (already checked by check_eval_opts). */
static int32_t make_cfg(const sat__target *m, const sat_eval_opts *e, int32_t method, int32_t steps,
                        sat__attack_cfg *cfg) {
    sat_attack_opts a;
    sat_attack_opts_init(&a, sizeof a);
    a.method = method;
    a.norm = e->norm;
    a.eps = e->eps;
    a.steps = steps;
    a.restarts = method == SAT_ATTACK_FGSM ? 1 : e->restarts;
    a.random_start = method != SAT_ATTACK_FGSM;
    /* The caller's step applies to PGD; FGSM steps eps and APGD adapts its own. */
    a.step_size = method == SAT_ATTACK_PGD ? e->step_size : 0.0f;
    a.seed = e->seed;
    return sat__attack_resolve(m, &a, cfg);
}

typedef struct eval_buf {
    float *x_adv, *logits, *grad, *dlogits;
    int32_t *pred, *targets;
    uint8_t *clean_ok, *apgd_ok;
    void *work;
} eval_buf;

/* Runs one attack on the chunk and clears ok[i] where the attack succeeds. */
static int32_t attack_and_score(const sat__target *m, const sat__attack_cfg *cfg, const float *x,
                                const int32_t *labels, const int32_t *targets, int64_t nc,
                                int64_t base, const eval_buf *b, uint8_t *ok) {
    int32_t st = sat__attack_run(m, cfg, x, labels, targets, NULL, nc, base, NULL, b->x_adv, b->work, NULL);
    if (st) return st;
    st = sat__predict(m, b->x_adv, nc, b->pred, NULL);
    if (st) return st;
    for (int64_t i = 0; i < nc; i++) ok[i] = ok[i] && b->pred[i] == labels[i];
    return SAT_OK;
}

static int64_t count_ok(const uint8_t *ok, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += ok[i];
    return c;
}

typedef struct eval_counts {
    int64_t clean, robust[SAT_EVAL_MAX_STEPS], fgsm, apgd;
} eval_counts;

static int32_t eval_chunk(const sat__target *m, const sat_eval_opts *e, const sat__attack_cfg *pgd,
                          const sat__attack_cfg *fgsm, const sat__attack_cfg *apgd_ce,
                          const sat__attack_cfg *apgd_t, int32_t num_targets, const float *x,
                          const int32_t *labels, int64_t nc, int64_t base, const eval_buf *b,
                          eval_counts *cnt, uint32_t *flags) {
    int32_t st = sat__predict(m, x, nc, b->pred, b->logits);
    if (st) return st;
    for (int64_t i = 0; i < nc; i++) b->clean_ok[i] = b->pred[i] == labels[i];
    cnt->clean += count_ok(b->clean_ok, nc);
    if ((st = sat__progress_add(m->progress, nc))) return st;
    st = sat__gradient_flags(m, x, labels, nc, b->grad, b->dlogits, flags);
    if (st == SAT_OK) st = sat__progress_add(m->progress, nc);
    if (st) return st;
    uint8_t *ok = b->apgd_ok;
    for (int32_t k = 0; k < e->num_steps; k++) {
        memcpy(ok, b->clean_ok, (size_t)nc);
        st = attack_and_score(m, &pgd[k], x, labels, NULL, nc, base, b, ok);
        if (st) return st;
        cnt->robust[k] += count_ok(ok, nc);
    }
    memcpy(ok, b->clean_ok, (size_t)nc);
    st = attack_and_score(m, fgsm, x, labels, NULL, nc, base, b, ok);
    if (st) return st;
    cnt->fgsm += count_ok(ok, nc);
    if (!e->apgd) return SAT_OK;
    /* Worst case over APGD-CE and APGD-T against each target. */
    memcpy(ok, b->clean_ok, (size_t)nc);
    st = attack_and_score(m, apgd_ce, x, labels, NULL, nc, base, b, ok);
    for (int32_t t = 0; st == SAT_OK && t < num_targets; t++) {
        sat__pick_targets(b->logits, labels, nc, m->classes, t, b->targets);
        st = attack_and_score(m, apgd_t, x, labels, b->targets, nc, base, b, ok);
    }
    if (st) return st;
    cnt->apgd += count_ok(ok, nc);
    return SAT_OK;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

int32_t sat_evaluate(sat_model *model, const sat_eval_opts *opts, const float *x, const int32_t *labels,
                     int64_t n, sat_eval_result *result) {
    static const char *const fn = "sat_evaluate";
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "%s: model is NULL", fn);
    sat__target target;
    sat__target_of_model(model, &target);
    const sat__target *m = &target;
    if (!result) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: result is NULL", fn);
    const uint32_t result_size = result->struct_size;
    if (result_size < sizeof(uint32_t))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "%s: result struct_size %u is too small (set it to sizeof the struct)", fn,
                         result_size);
    sat_eval_opts e = eval_defaults();
    int32_t st = opts ? sat__opts_copy(&e, sizeof e, opts, "sat_eval_opts", m->err) : SAT_OK;
    if (st) return st;
    st = check_eval_opts(m, &e);
    if (st) return st;
    sat__attack_cfg pgd[SAT_EVAL_MAX_STEPS], fgsm, apgd_ce, apgd_t;
    for (int32_t k = 0; k < e.num_steps && st == SAT_OK; k++)
        st = make_cfg(m, &e, SAT_ATTACK_PGD, e.steps[k], &pgd[k]);
    if (st == SAT_OK) st = make_cfg(m, &e, SAT_ATTACK_FGSM, 1, &fgsm);
    /* APGD-T needs 4 classes; with fewer only APGD-CE runs. */
    const int32_t num_targets =
        !e.apgd || m->classes < 4 ? 0 : (e.apgd_targets < m->classes - 1 ? e.apgd_targets : m->classes - 1);
    if (st == SAT_OK && e.apgd) st = make_cfg(m, &e, SAT_ATTACK_APGD_CE, e.apgd_steps, &apgd_ce);
    if (st == SAT_OK && num_targets > 0) st = make_cfg(m, &e, SAT_ATTACK_APGD_DLR, e.apgd_steps, &apgd_t);
    if (st) return st;
    st = sat__attack_check_data(m, x, labels, n, fn);
    if (st) return st;

    int64_t chunk = e.batch == 0 ? m->max_batch : (int64_t)e.batch;
    if (chunk > n) chunk = n;
    const size_t d = (size_t)m->in_size, k = (size_t)m->classes, c = (size_t)chunk;
    const size_t mb = (size_t)(chunk < m->max_batch ? chunk : m->max_batch);
    size_t work = 0;
    for (int32_t i = 0; i < e.num_steps; i++) work = max_size(work, sat__attack_work_bytes(m, &pgd[i], chunk));
    work = max_size(work, sat__attack_work_bytes(m, &fgsm, chunk));
    if (e.apgd) work = max_size(work, sat__attack_work_bytes(m, &apgd_ce, chunk));
    if (num_targets > 0) work = max_size(work, sat__attack_work_bytes(m, &apgd_t, chunk));
    const size_t sizes[] = {c * d * sizeof(float),  c * k * sizeof(float), mb * d * sizeof(float),
                            mb * k * sizeof(float), c * sizeof(int32_t),   c * sizeof(int32_t),
                            c,                      c,                     work};
    void *reg[sizeof sizes / sizeof sizes[0]];
    void *block = sat__attack_alloc_regions(m, sizes, reg, sizeof sizes / sizeof sizes[0], fn);
    if (!block) return SAT_E_NOMEM;
    eval_buf b = {reg[0], reg[1], reg[2], reg[3], reg[4], reg[5], reg[6], reg[7], reg[8]};

    /* Units per example: the clean pass, the gradient check, and every attack iteration. */
    int64_t per_example = 2 + (int64_t)fgsm.steps * fgsm.restarts;
    for (int32_t i = 0; i < e.num_steps; i++) per_example += (int64_t)pgd[i].steps * pgd[i].restarts;
    if (e.apgd) per_example += (int64_t)(1 + num_targets) * apgd_ce.steps * apgd_ce.restarts;
    sat__progress progress;
    target.progress = &progress;
    st = sat__progress_begin(&progress, m->ctx, fn, n * per_example, m->err);

    eval_counts cnt;
    memset(&cnt, 0, sizeof cnt);
    uint32_t flags = 0;
    for (int64_t s = 0; s < n && st == SAT_OK; s += chunk) {
        const int64_t nc = n - s < chunk ? n - s : chunk;
        st = eval_chunk(m, &e, pgd, &fgsm, &apgd_ce, &apgd_t, num_targets, x + s * m->in_size, labels + s,
                        nc, s, &b, &cnt, &flags);
    }
    sat__dealloc(m->ctx, block);
    if (st) return st;

    /* A difference counts when it exceeds one percentage point and one example. */
    const int64_t thr = n / 100 > 1 ? n / 100 : 1;
    int32_t top = -1, second = -1; /* entries with the largest and the next smaller k */
    for (int32_t i = 0; i < e.num_steps; i++)
        if (top < 0 || e.steps[i] > e.steps[top]) top = i;
    for (int32_t i = 0; i < e.num_steps; i++)
        if (e.steps[i] < e.steps[top] && (second < 0 || e.steps[i] > e.steps[second])) second = i;
    if (second >= 0 && cnt.robust[second] - cnt.robust[top] > thr) flags |= SAT_FLAG_NOT_CONVERGED;
    int64_t strongest = -1; /* robust count under the strongest multi-step PGD */
    for (int32_t i = 0; i < e.num_steps; i++)
        if (e.steps[i] > 1 && (strongest < 0 || cnt.robust[i] < strongest)) strongest = cnt.robust[i];
    if (strongest >= 0 && strongest - cnt.fgsm > thr) flags |= SAT_FLAG_ONE_STEP_STRONGER;

    sat_eval_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = result_size;
    r.num_steps = e.num_steps;
    r.n = n;
    const double dn = (double)n;
    r.clean_accuracy = (float)((double)cnt.clean / dn);
    for (int32_t i = 0; i < SAT_EVAL_MAX_STEPS; i++)
        r.robust_accuracy[i] = i < e.num_steps ? (float)((double)cnt.robust[i] / dn) : NAN;
    r.fgsm_accuracy = (float)((double)cnt.fgsm / dn);
    r.apgd_accuracy = e.apgd ? (float)((double)cnt.apgd / dn) : NAN;
    r.flags = flags;
    /* Write exactly the caller's struct: a smaller (older) one gets a prefix, a larger
     * (newer) one zeros in the fields this library does not know. */
    if (result_size > sizeof r) memset((unsigned char *)result + sizeof r, 0, result_size - sizeof r);
    memcpy(result, &r, result_size < sizeof r ? result_size : sizeof r);
    return SAT_OK;
}
