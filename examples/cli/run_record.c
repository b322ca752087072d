/* run_record.c - one run of `sat-cli compare` (one activation, one seed) as one JSON line:
 * written to compare.jsonl and to the run's own result file, sent from a child process to
 * the parent, and read back when an interrupted compare is resumed. */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t cli_recipe_hash(const cli_config *c) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf,
                     "data=%s format=%d train-limit=%lld test-limit=%lld val=%lld augment=%u "
                     "model=%s spec=%s act-param=%a backward=%d:%a,%d:%a method=%d norm=%d "
                     "eps=%a steps=%d step-size=%a beta=%a replays=%d epochs=%d batch=%lld "
                     "opt=%d lr=%a momentum=%a wd=%a schedule=%d warmup=%a val-steps=%d "
                     "restarts=%d apgd=%d apgd-steps=%d pgd=",
                     c->data_dir, (int)c->format, (long long)c->train_limit,
                     (long long)c->test_limit, (long long)c->val, (unsigned)c->augment,
                     c->preset, c->spec_file ? c->spec_file : "", (double)c->act_param,
                     (int)c->attack_backward, (double)c->attack_backward_param,
                     (int)c->train_backward, (double)c->train_backward_param, (int)c->method,
                     (int)c->norm, (double)c->eps, (int)c->steps, (double)c->step_size,
                     (double)c->trades_beta, (int)c->free_replays, (int)c->epochs,
                     (long long)c->batch, (int)c->optimizer, (double)c->lr,
                     (double)c->momentum, (double)c->wd, (int)c->schedule, (double)c->warmup,
                     (int)c->val_steps, (int)c->restarts, (int)c->apgd, (int)c->apgd_steps);
    for (int32_t i = 0; i < c->num_pgd && n > 0 && (size_t)n < sizeof buf; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%d,", (int)c->pgd_steps[i]);
    /* A library of another version or build may compute other numbers. */
    return fnv1a(fnv1a(1469598103934665603ull, buf), sat_build_info());
}

static const char *backward_name(int32_t act) {
    return act == SAT_ACT_SAME ? "same" : sat_activation_name(act);
}

void cli_run_write(FILE *f, const cli_config *cfg, const cli_run *r, float eps, uint64_t recipe) {
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, recipe);
    cli_json j;
    cli_json_begin(&j, f);
    cli_json_str(&j, "activation", sat_activation_name(r->act));
    cli_json_int(&j, "seed", (int64_t)r->seed);
    cli_json_str(&j, "model", cfg->spec_file ? cfg->spec_file : cfg->preset);
    cli_json_int(&j, "method", cfg->method);
    cli_json_num(&j, "eps", eps);
    cli_json_int(&j, "train_steps", cfg->steps);
    cli_json_str(&j, "attack_backward", backward_name(cfg->attack_backward));
    cli_json_num(&j, "attack_backward_param", cfg->attack_backward_param);
    cli_json_str(&j, "train_backward", backward_name(cfg->train_backward));
    cli_json_num(&j, "train_backward_param", cfg->train_backward_param);
    cli_json_int(&j, "epochs", r->train.epochs_done);
    cli_json_int(&j, "best_epoch", r->train.best_epoch);
    cli_json_int(&j, "n_test", r->n_test);
    cli_json_num(&j, "clean_acc", r->eval.clean_accuracy);
    cli_json_num(&j, "fgsm_acc", r->eval.fgsm_accuracy);
    cli_json_int_array(&j, "pgd_steps", cfg->pgd_steps, cfg->num_pgd);
    cli_json_num_array(&j, "pgd_acc", r->eval.robust_accuracy, cfg->num_pgd);
    cli_json_num(&j, "apgd_acc", cfg->apgd ? r->eval.apgd_accuracy : NAN);
    cli_json_int(&j, "flags", r->eval.flags);
    cli_json_num(&j, "train_seconds", r->train.seconds);
    cli_json_num(&j, "images_per_sec", r->train.images_per_sec);
    cli_json_bool(&j, "catastrophic_overfitting", r->train.catastrophic);
    cli_json_int(&j, "catastrophic_epoch", r->train.catastrophic_epoch);
    cli_json_str(&j, "recipe", hash);
    cli_json_end(&j);
}

/* The text after `"key": ` in line, or NULL. */
static const char *field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}

/* A number or null (NaN) at p; the end in *end. Returns -1 when neither is there. */
static int number_at(const char *p, double *v, const char **end) {
    if (strncmp(p, "null", 4) == 0) {
        *v = NAN;
        *end = p + 4;
        return 0;
    }
    char *e;
    *v = strtod(p, &e);
    *end = e;
    return e == p ? -1 : 0;
}

static int num(const char *line, const char *key, double *v) {
    const char *p = field(line, key), *end;
    return p ? number_at(p, v, &end) : -1;
}

int cli_json_line_num(const char *line, const char *key, double *v) { return num(line, key, v); }

static int num_array(const char *line, const char *key, float *v, int32_t n) {
    const char *p = field(line, key);
    if (!p || *p++ != '[') return -1;
    for (int32_t i = 0; i < n; i++) {
        double x;
        if (number_at(p, &x, &p)) return -1;
        v[i] = (float)x;
        if (i + 1 < n && strncmp(p, ", ", 2) != 0) return -1;
        p += i + 1 < n ? 2 : 0;
    }
    return *p == ']' ? 0 : -1;
}

int cli_run_parse(const char *line, const cli_config *cfg, uint64_t recipe, cli_run *r) {
    char want[96];
    snprintf(want, sizeof want, "\"%016" PRIx64 "\"", recipe);
    const char *h = field(line, "recipe"), *act = field(line, "activation");
    const char *name = sat_activation_name(r->act);
    if (!h || strncmp(h, want, strlen(want)) != 0 || !act || act[0] != '"' ||
        strncmp(act + 1, name, strlen(name)) != 0 || act[1 + strlen(name)] != '"')
        return -1;
    double seed, epochs, best, n_test, clean, fgsm, apgd, flags, secs, ips, co_epoch;
    if (num(line, "seed", &seed) || seed != (double)r->seed || num(line, "epochs", &epochs) ||
        num(line, "best_epoch", &best) || num(line, "n_test", &n_test) ||
        num(line, "clean_acc", &clean) || num(line, "fgsm_acc", &fgsm) ||
        num(line, "apgd_acc", &apgd) || num(line, "flags", &flags) ||
        num(line, "train_seconds", &secs) || num(line, "images_per_sec", &ips) ||
        num(line, "catastrophic_epoch", &co_epoch) || !field(line, "catastrophic_overfitting"))
        return -1;
    memset(&r->eval, 0, sizeof r->eval);
    r->eval.struct_size = sizeof r->eval;
    if (num_array(line, "pgd_acc", r->eval.robust_accuracy, cfg->num_pgd)) return -1;
    r->eval.num_steps = cfg->num_pgd;
    r->eval.n = (int64_t)n_test;
    r->eval.clean_accuracy = (float)clean;
    r->eval.fgsm_accuracy = (float)fgsm;
    r->eval.apgd_accuracy = (float)apgd;
    r->eval.flags = (uint32_t)flags;
    memset(&r->train, 0, sizeof r->train);
    r->train.epochs_done = (int32_t)epochs;
    r->train.best_epoch = (int32_t)best;
    r->train.seconds = secs;
    r->train.images_per_sec = ips;
    r->train.catastrophic = strncmp(field(line, "catastrophic_overfitting"), "true", 4) == 0;
    r->train.catastrophic_epoch = (int32_t)co_epoch;
    r->train.best_val_clean = NAN;
    r->train.best_val_robust = NAN;
    r->n_test = (int64_t)n_test;
    return 0;
}
