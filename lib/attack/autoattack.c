/* autoattack.c - AutoAttack (Croce & Hein, arXiv 2003.01690): a fixed sequence of
 * complementary attacks, each run only on the examples every earlier one failed to break, in
 * the reference implementation's order and with its settings:
 *   standard: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries);
 *   plus:     APGD-CE and APGD-DLR (5 restarts each), FAB (5 restarts), Square, APGD-T, FAB-T;
 *   rand:     APGD-CE, APGD-DLR with gradients averaged over 20 passes (for randomised
 *             models; a libsat model is deterministic, so one pass is the same thing).
 * APGD and FAB run 100 iterations. Examples are gathered in blocks of max_batch survivors;
 * each keeps its own random streams (keyed by its index in x), so its result does not depend
 * on which others survived. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define AA_ITERATIONS 100
#define AA_QUERIES 5000
#define AA_TARGETS 9
#define AA_EOT_PASSES 20
#define AA_SQUARE_ALPHA 0.002 /* the reference's threshold for Square finding more */

typedef struct aa_step {
    int32_t attack;   /* SAT_AA_ATTACK_* */
    int32_t restarts;
    int32_t targets;  /* target classes, one run each; 0: untargeted */
} aa_step;

static const aa_step standard_steps[] = {
    {SAT_AA_ATTACK_APGD_CE, 1, 0},
    {SAT_AA_ATTACK_APGD_T, 1, AA_TARGETS},
    {SAT_AA_ATTACK_FAB_T, 1, AA_TARGETS},
    {SAT_AA_ATTACK_SQUARE, 1, 0},
};
static const aa_step plus_steps[] = {
    {SAT_AA_ATTACK_APGD_CE, 5, 0}, {SAT_AA_ATTACK_APGD_DLR, 5, 0},      {SAT_AA_ATTACK_FAB, 5, 0},
    {SAT_AA_ATTACK_SQUARE, 1, 0},  {SAT_AA_ATTACK_APGD_T, 1, AA_TARGETS}, {SAT_AA_ATTACK_FAB_T, 1, AA_TARGETS},
};
static const aa_step rand_steps[] = {
    {SAT_AA_ATTACK_APGD_CE, 1, 0},
    {SAT_AA_ATTACK_APGD_DLR, 1, 0},
};

static sat_autoattack_opts aa_defaults(void) {
    sat_autoattack_opts d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.version = SAT_AA_STANDARD;
    d.norm = SAT_NORM_LINF;
    d.eps = 8.0f / 255.0f;
    d.seed = SAT_SEED_CONTEXT;
    return d;
}

int32_t sat_autoattack_opts_init(sat_autoattack_opts *opts, uint32_t struct_size) {
    sat_autoattack_opts d = aa_defaults();
    return sat__opts_init(opts, struct_size, &d, sizeof d, "sat_autoattack_opts_init");
}

/* The sequence's steps for a version, leaving out those the class count does not allow. */
typedef struct aa_plan {
    aa_step steps[SAT_AA_MAX_ATTACKS];
    sat__attack_cfg cfg[SAT_AA_MAX_ATTACKS];
    int32_t count;
    sat__attack_cfg fgsm; /* the one-step check on the survivors */
} aa_plan;

static int32_t step_cfg(const sat__target *m, const sat_autoattack_opts *o, const aa_step *s,
                        sat__attack_cfg *cfg) {
    sat_attack_opts a;
    sat_attack_opts_init(&a, sizeof a);
    a.norm = o->norm;
    a.eps = o->eps;
    a.seed = o->seed;
    a.restarts = s->restarts;
    a.steps = AA_ITERATIONS;
    switch (s->attack) {
    case SAT_AA_ATTACK_APGD_CE:
    case SAT_AA_ATTACK_APGD_DLR: a.method = SAT_ATTACK_APGD_CE; break;
    case SAT_AA_ATTACK_APGD_T: a.method = SAT_ATTACK_APGD_DLR; break;
    case SAT_AA_ATTACK_FAB_T: a.method = SAT_ATTACK_FAB; a.targeted = 1; break;
    case SAT_AA_ATTACK_FAB: a.method = SAT_ATTACK_FAB; break;
    default: a.method = SAT_ATTACK_SQUARE; a.steps = AA_QUERIES; break;
    }
    int32_t st = sat__attack_resolve(m, &a, cfg);
    if (st) return st;
    /* APGD-DLR: APGD's schedule on the untargeted DLR loss. */
    if (s->attack == SAT_AA_ATTACK_APGD_DLR) cfg->objective = SAT__OBJ_DLR;
    if (o->version == SAT_AA_RAND) cfg->eot = AA_EOT_PASSES;
    return SAT_OK;
}

static int32_t make_plan(const sat__target *m, const sat_autoattack_opts *o, aa_plan *p) {
    static const char *const what = "sat_autoattack_opts";
    if (o->version != SAT_AA_STANDARD && o->version != SAT_AA_PLUS && o->version != SAT_AA_RAND)
        return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: unknown version %d", what, o->version);
#define AA_COUNT(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))
    const aa_step *steps = o->version == SAT_AA_STANDARD ? standard_steps
                           : o->version == SAT_AA_PLUS   ? plus_steps
                                                         : rand_steps;
    const int32_t count = o->version == SAT_AA_STANDARD ? AA_COUNT(standard_steps)
                          : o->version == SAT_AA_PLUS   ? AA_COUNT(plus_steps)
                                                        : AA_COUNT(rand_steps);
#undef AA_COUNT
    memset(p, 0, sizeof *p);
    for (int32_t i = 0; i < count; i++) {
        aa_step s = steps[i];
        /* DLR needs the third (untargeted) or fourth (targeted) largest logit. */
        if (s.attack == SAT_AA_ATTACK_APGD_T && m->classes < 4) continue;
        if (s.attack == SAT_AA_ATTACK_APGD_DLR && m->classes < 3) continue;
        if (s.targets > m->classes - 1) s.targets = m->classes - 1;
        int32_t st = step_cfg(m, o, &s, &p->cfg[p->count]);
        if (st) return st;
        p->steps[p->count++] = s;
    }
    sat_attack_opts a;
    sat_attack_opts_init(&a, sizeof a);
    a.method = SAT_ATTACK_FGSM;
    a.norm = o->norm;
    a.eps = o->eps;
    a.random_start = 0;
    return sat__attack_resolve(m, &a, &p->fgsm);
}

typedef struct aa_buf {
    float *logits;       /* [n x classes] clean logits (targets) */
    int32_t *state;      /* [n] SAT_AA_ROBUST, SAT_AA_MISCLASSIFIED or the breaking step */
    float *xb, *xab;     /* [mb x d] a block of survivors and its attacked version */
    float *zb, *dlogits; /* [mb x classes] the block's clean logits; scratch */
    int32_t *yb, *tb, *pb;
    int64_t *idx;
    void *work;
} aa_buf;

/* Runs cfg (against target rank `rank`, or untargeted when rank < 0) on the survivors, in
 * blocks of max_batch, and marks the examples it breaks with `slot`. Returns how many. */
static int32_t run_on_survivors(const sat__target *m, const sat__attack_cfg *cfg, int32_t rank, int32_t slot,
                                const float *x, const int32_t *labels, int64_t n, const aa_buf *b, float *x_adv,
                                int64_t *broken) {
    const int64_t d = m->in_size, mb = m->max_batch;
    const int32_t k = m->classes;
    int64_t next = 0, attacked = 0;
    *broken = 0;
    for (;;) {
        int64_t nb = 0;
        for (; next < n && nb < mb; next++) {
            if (b->state[next] != SAT_AA_ROBUST) continue;
            b->idx[nb] = next;
            b->yb[nb] = labels[next];
            memcpy(b->xb + nb * d, x + next * d, sizeof(float) * (size_t)d);
            memcpy(b->zb + nb * k, b->logits + next * k, sizeof(float) * (size_t)k);
            nb++;
        }
        if (nb == 0) {
            /* The examples not attacked count as done: the total assumed all of them. */
            return sat__progress_add(m->progress, (n - attacked) * cfg->steps * cfg->restarts);
        }
        attacked += nb;
        if (rank >= 0) sat__pick_targets(b->zb, b->yb, nb, k, rank, b->tb);
        int32_t st = sat__attack_run(m, cfg, b->xb, b->yb, rank >= 0 ? b->tb : NULL, NULL, nb, 0, b->idx,
                                     b->xab, b->work, NULL);
        if (st == SAT_OK) st = sat__predict(m, b->xab, nb, b->pb, NULL);
        if (st) return st;
        for (int64_t i = 0; i < nb; i++) {
            if (b->pb[i] == b->yb[i]) continue;
            b->state[b->idx[i]] = slot;
            if (x_adv) memcpy(x_adv + b->idx[i] * d, b->xab + i * d, sizeof(float) * (size_t)d);
            (*broken)++;
        }
    }
}

static int32_t check_call(const sat__target *m, const sat_autoattack_opts *opts, sat_autoattack_opts *o,
                          aa_plan *plan, const float *x, const int32_t *labels, int64_t n,
                          const float *x_adv, const sat_autoattack_result *result, const char *fn) {
    if (!result) return sat__fail(m->err, SAT_E_INVALID_ARG, "%s: result is NULL", fn);
    if (result->struct_size < sizeof(uint32_t))
        return sat__fail(m->err, SAT_E_INVALID_ARG,
                         "%s: result struct_size %u is too small (set it to sizeof the struct)", fn,
                         result->struct_size);
    *o = aa_defaults();
    int32_t st = opts ? sat__opts_copy(o, sizeof *o, opts, "sat_autoattack_opts", m->err) : SAT_OK;
    o->seed = sat__seed(m->ctx, o->seed); /* before the target runs offset it */
    if (st == SAT_OK) st = make_plan(m, o, plan);
    if (st == SAT_OK) st = sat__attack_check_data(m, x, labels, n, fn);
    /* Later attacks read x after earlier ones wrote x_adv. */
    if (st == SAT_OK && x_adv && sat__overlap(x_adv, n * m->in_size, x, n * m->in_size))
        st = sat__fail(m->err, SAT_E_INVALID_ARG, "%s: x_adv must not overlap x", fn);
    return st;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static int32_t autoattack(const sat__target *m, const sat_autoattack_opts *opts, const float *x,
                          const int32_t *labels, int64_t n, float *x_adv, int32_t *outcome,
                          sat_autoattack_result *result, const char *fn) {
    sat_autoattack_opts o;
    aa_plan plan;
    int32_t st = check_call(m, opts, &o, &plan, x, labels, n, x_adv, result, fn);
    if (st) return st;
    const int64_t d = m->in_size, mb = m->max_batch;
    const size_t k = (size_t)m->classes, un = (size_t)n, ub = (size_t)mb;
    size_t work = sat__attack_work_bytes(m, &plan.fgsm, mb);
    for (int32_t i = 0; i < plan.count; i++) work = max_size(work, sat__attack_work_bytes(m, &plan.cfg[i], mb));
    const size_t sizes[] = {un * k * sizeof(float), un * sizeof(int32_t), ub * (size_t)d * sizeof(float),
                            ub * (size_t)d * sizeof(float), ub * k * sizeof(float), ub * k * sizeof(float),
                            3 * ub * sizeof(int32_t), ub * sizeof(int64_t), work};
    void *reg[sizeof sizes / sizeof sizes[0]];
    void *block = sat__attack_alloc_regions(m, sizes, reg, sizeof sizes / sizeof sizes[0], fn);
    if (!block) return SAT_E_NOMEM;
    int32_t *ints = reg[6];
    aa_buf b = {reg[0], reg[1], reg[2], reg[3], reg[4], reg[5], ints, ints + mb, ints + 2 * mb, reg[7], reg[8]};

    /* Progress: one unit per example for the clean pass, the gradient check and the FGSM
     * check, and per example and iteration of every attack as if all examples survived. */
    int64_t per_example = 3;
    for (int32_t s = 0; s < plan.count; s++)
        per_example += (int64_t)(plan.steps[s].targets > 0 ? plan.steps[s].targets : 1) * plan.cfg[s].steps *
                       plan.cfg[s].restarts;
    sat__progress progress;
    sat__target reporting = *m;
    reporting.progress = &progress;
    m = &reporting;
    st = sat__progress_begin(&progress, m->ctx, fn, n * per_example, m->err);

    /* Clean predictions: only the correctly classified examples are attacked. */
    int32_t *pred = b.state;
    uint32_t flags = 0;
    for (int64_t s = 0; st == SAT_OK && s < n; s += mb) {
        const int64_t nc = n - s < mb ? n - s : mb;
        st = sat__predict(m, x + s * d, nc, pred + s, b.logits + s * (int64_t)k);
        if (st == SAT_OK) st = sat__gradient_flags(m, x + s * d, labels + s, nc, b.xab, b.dlogits, &flags);
        if (st == SAT_OK) st = sat__progress_add(m->progress, 2 * nc);
    }
    int64_t clean = 0;
    for (int64_t i = 0; st == SAT_OK && i < n; i++) {
        const int ok = pred[i] == labels[i];
        b.state[i] = ok ? SAT_AA_ROBUST : SAT_AA_MISCLASSIFIED;
        clean += ok;
    }
    if (st == SAT_OK && x_adv) memcpy(x_adv, x, sizeof(float) * un * (size_t)d);

    int64_t left = clean, after[SAT_AA_MAX_ATTACKS] = {0}, square_only = 0;
    for (int32_t s = 0; st == SAT_OK && s < plan.count; s++) {
        const aa_step *step = &plan.steps[s];
        const int32_t runs = step->targets > 0 ? step->targets : 1;
        for (int32_t r = 0; st == SAT_OK && r < runs; r++) {
            sat__attack_cfg cfg = plan.cfg[s];
            cfg.seed = o.seed + (uint64_t)r; /* each target run draws its own starts */
            int64_t broken;
            st = run_on_survivors(m, &cfg, step->targets > 0 ? r : -1, s, x, labels, n, &b, x_adv, &broken);
            left -= broken;
            if (step->attack == SAT_AA_ATTACK_SQUARE) square_only += broken;
        }
        after[s] = left;
    }
    /* The one-step check: FGSM against what survived everything. It is not part of the
     * sequence: what it breaks is counted, and marked SAT_AA_ROBUST, which changes nothing. */
    int64_t fgsm_broken = 0;
    if (st == SAT_OK)
        st = run_on_survivors(m, &plan.fgsm, -1, SAT_AA_ROBUST, x, labels, n, &b, NULL, &fgsm_broken);
    if (st == SAT_OK && outcome) memcpy(outcome, b.state, sizeof(int32_t) * un);
    sat__dealloc(m->ctx, block);
    if (st) return st;

    const int64_t thr = n / 100 > 1 ? n / 100 : 1;
    if (plan.count > 2 && after[1] - left > thr) flags |= SAT_FLAG_NOT_CONVERGED;
    if (fgsm_broken > thr) flags |= SAT_FLAG_ONE_STEP_STRONGER;
    if ((double)square_only > AA_SQUARE_ALPHA * (double)n) flags |= SAT_FLAG_SQUARE_STRONGER;

    sat_autoattack_result res;
    memset(&res, 0, sizeof res);
    const uint32_t result_size = result->struct_size;
    res.struct_size = result_size;
    res.num_attacks = plan.count;
    res.n = n;
    res.clean_accuracy = (float)((double)clean / (double)n);
    res.robust_accuracy = (float)((double)left / (double)n);
    for (int32_t s = 0; s < SAT_AA_MAX_ATTACKS; s++) {
        res.attacks[s] = s < plan.count ? plan.steps[s].attack : -1;
        res.accuracy_after[s] = s < plan.count ? (float)((double)after[s] / (double)n) : NAN;
    }
    res.flags = flags;
    res.square_only = square_only;
    if (result_size > sizeof res) memset((unsigned char *)result + sizeof res, 0, result_size - sizeof res);
    memcpy(result, &res, result_size < sizeof res ? result_size : sizeof res);
    return SAT_OK;
}

int32_t sat_autoattack(sat_model *model, const sat_autoattack_opts *opts, const float *x, const int32_t *labels,
                       int64_t n, float *x_adv, int32_t *outcome, sat_autoattack_result *result) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_autoattack: model is NULL");
    sat__target m;
    sat__target_of_model(model, &m);
    return autoattack(&m, opts, x, labels, n, x_adv, outcome, result, "sat_autoattack");
}

int32_t sat_callback_autoattack(sat_callback_model *model, const sat_autoattack_opts *opts, const float *x,
                                const int32_t *labels, int64_t n, float *x_adv, int32_t *outcome,
                                sat_autoattack_result *result) {
    if (!model) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_callback_autoattack: model is NULL");
    sat__target m;
    sat__target_of_callback(model, &m);
    return autoattack(&m, opts, x, labels, n, x_adv, outcome, result, "sat_callback_autoattack");
}
