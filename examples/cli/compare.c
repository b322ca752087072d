/* compare.c - `sat-cli compare`: the same recipe trained for every activation and every
 * seed (same data, validation split per seed, schedule and attack), each best model
 * evaluated on the test split; a table of mean +- standard deviation over the seeds and of
 * each activation's paired difference against the first, also written as JSON lines and
 * CSV. The trainings run as child processes (runs.c); with --log-dir each finished run is
 * kept, so the same command resumes an interrupted compare. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct compare {
    const cli_config *cfg;
    float eps;
    uint64_t recipe;
    int32_t num_seeds;
    const uint64_t *seeds;
    cli_run runs[CLI_MAX_ACTS * CLI_MAX_SEEDS]; /* activation a, seed s at a * num_seeds + s */
    int32_t done[CLI_MAX_ACTS * CLI_MAX_SEEDS];
    int32_t todo[CLI_MAX_ACTS * CLI_MAX_SEEDS]; /* runs still to compute, as indices */
    char names[CLI_MAX_ACTS * CLI_MAX_SEEDS][64];
} compare;

static int make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
    }
    fprintf(stderr, "%s: cannot create log directory '%s': %s\n", cli_prog, dir,
            strerror(errno ? errno : ENOTDIR));
    return -1;
}

/* DIR/PREFIX + "ACT-seedS" + SUFFIX for one run (ACT-seedS is the run's name). */
static void run_path(char *buf, size_t size, const compare *cmp, int32_t i, const char *prefix,
                     const char *suffix) {
    snprintf(buf, size, "%s/%s%s%s", cmp->cfg->log_dir, prefix, cmp->names[i], suffix);
}

static void log_path(char *buf, size_t size, const compare *cmp, const char *name) {
    snprintf(buf, size, "%s/%s", cmp->cfg->log_dir, name);
}

/* ---- one run, in a child process ----------------------------------------------------- */

static int run_one(void *user, int32_t k, FILE *result) {
    compare *cmp = user;
    const int32_t i = cmp->todo[k];
    cli_run *r = &cmp->runs[i];
    cli_config cfg = *cmp->cfg;
    cfg.seed = r->seed;
    char label[80], out[4096], log[4096], ckpt[4096];
    snprintf(label, sizeof label, "[%s] ", cmp->names[i]);
    if (cfg.log_dir) {
        /* The checkpoint is named after the recipe, so a changed recipe starts afresh. */
        char suffix[64];
        snprintf(suffix, sizeof suffix, "-%016llx.ckpt", (unsigned long long)cmp->recipe);
        run_path(out, sizeof out, cmp, i, "model-", ".sat");
        run_path(log, sizeof log, cmp, i, "train-", ".jsonl");
        run_path(ckpt, sizeof ckpt, cmp, i, "checkpoint-", suffix);
        cfg.checkpoint = ckpt;
        cfg.resume = 1;
    }
    sat_context *ctx = NULL;
    sat_dataset *train = NULL, *val = NULL, *test = NULL;
    int rc = cli_context(&cfg, &ctx);
    if (!rc) rc = cli_load_split(&cfg, ctx, SAT_SPLIT_TRAIN, cfg.train_limit, &train);
    if (!rc) rc = cli_load_split(&cfg, ctx, SAT_SPLIT_TEST, cfg.test_limit, &test);
    if (!rc) rc = cli_split_val(&cfg, train, &val);
    if (!rc)
        rc = cli_train_model(&cfg, ctx, train, val, r->act, cfg.log_dir ? out : NULL,
                             cfg.log_dir ? log : NULL, label, &r->train);
    if (!rc) {
        r->n_test = sat_dataset_size(test);
        if (!cfg.quiet) {
            printf("%sevaluating on %lld test examples...\n", label, (long long)r->n_test);
            fflush(stdout);
        }
        rc = cli_evaluate(&cfg, r->train.model, test, cmp->eps, &r->eval);
    }
    sat_model_destroy(r->train.model);
    r->train.model = NULL;
    if (!rc) {
        cli_run_write(result, &cfg, r, cmp->eps, cmp->recipe);
        if (cfg.log_dir) remove(ckpt); /* the run is finished: its result file replaces it */
    }
    sat_dataset_destroy(test);
    sat_dataset_destroy(val);
    sat_dataset_destroy(train);
    sat_context_destroy(ctx);
    return rc;
}

/* ---- results: the table and the logs ------------------------------------------------- */

/* Column c of a run: 0 clean, 1..num_pgd PGD-k, then APGD; in percent. */
static int32_t num_cols(const cli_config *cfg) { return 1 + cfg->num_pgd + (cfg->apgd ? 1 : 0); }

static double col_value(const cli_config *cfg, const cli_run *r, int32_t c) {
    const double v = c == 0 ? r->eval.clean_accuracy
                     : c <= cfg->num_pgd ? r->eval.robust_accuracy[c - 1]
                                         : r->eval.apgd_accuracy;
    return 100.0 * v;
}

/* A table's header: `lead` (lead_cols cells), the accuracy columns, `tail` (tail_cols
 * cells), and the separator line. */
static void table_head(FILE *f, const cli_config *cfg, const char *lead, int32_t lead_cols,
                       const char *tail, int32_t tail_cols) {
    fprintf(f, "| %s | clean %% |", lead);
    for (int32_t i = 0; i < cfg->num_pgd; i++) fprintf(f, " PGD-%d %% |", (int)cfg->pgd_steps[i]);
    if (cfg->apgd) fprintf(f, " APGD-CE/T %% |");
    fprintf(f, "%s\n|", tail);
    for (int32_t c = 0; c < lead_cols + num_cols(cfg) + tail_cols; c++) fprintf(f, "---|");
    fprintf(f, "\n");
}

/* The values of column c over the seeds of activation a. */
static void column(const compare *cmp, int32_t a, int32_t c, double *v) {
    for (int32_t s = 0; s < cmp->num_seeds; s++)
        v[s] = col_value(cmp->cfg, &cmp->runs[a * cmp->num_seeds + s], c);
}

static void print_tables(FILE *f, const compare *cmp) {
    const cli_config *cfg = cmp->cfg;
    const int32_t n = cmp->num_seeds, cols = num_cols(cfg);
    double v[CLI_MAX_SEEDS], base[CLI_MAX_SEEDS];
    table_head(f, cfg, "activation | seeds", 2, " train time | img/s |", 2);
    for (int32_t a = 0; a < cfg->num_acts; a++) {
        fprintf(f, "| %s | %d |", sat_activation_name(cfg->acts[a]), (int)n);
        for (int32_t c = 0; c < cols; c++) {
            column(cmp, a, c, v);
            if (n > 1)
                fprintf(f, " %.2f +- %.2f |", cli_mean(v, n), cli_stddev(v, n));
            else
                fprintf(f, " %.2f |", v[0]);
        }
        double secs = 0, ips = 0;
        for (int32_t s = 0; s < n; s++) {
            secs += cmp->runs[a * n + s].train.seconds / n;
            ips += cmp->runs[a * n + s].train.images_per_sec / n;
        }
        char dur[32];
        cli_format_duration(dur, sizeof dur, secs);
        fprintf(f, " %s | %.0f |\n", dur, ips);
    }
    if (n > 1)
        fprintf(f, "\nmean +- sample standard deviation over the seeds, in %%.\n");
    if (cfg->num_acts < 2) return;

    if (n > 1)
        fprintf(f, "\nPaired difference against %s over the same seeds, in points: mean and 95%% "
                   "confidence interval (Student t with %d degree%s of freedom over the %d "
                   "per-seed differences):\n",
                sat_activation_name(cfg->acts[0]), (int)(n - 1), n == 2 ? "" : "s", (int)n);
    else
        fprintf(f, "\nDifference against %s, in points (one seed: no confidence interval; "
                   "give several with --seeds):\n", sat_activation_name(cfg->acts[0]));
    fprintf(f, "\n");
    table_head(f, cfg, "difference", 1, "", 0);
    for (int32_t a = 1; a < cfg->num_acts; a++) {
        fprintf(f, "| %s - %s |", sat_activation_name(cfg->acts[a]),
                sat_activation_name(cfg->acts[0]));
        for (int32_t c = 0; c < cols; c++) {
            double mean, lo, hi;
            column(cmp, a, c, v);
            column(cmp, 0, c, base);
            cli_paired_ci(v, base, n, &mean, &lo, &hi);
            if (n > 1)
                fprintf(f, " %+.2f [%+.2f, %+.2f] |", mean, lo, hi);
            else
                fprintf(f, " %+.2f |", mean);
        }
        fprintf(f, "\n");
    }
}

/* compare.jsonl and compare.csv: the raw numbers of every finished run. */
static int write_logs(const compare *cmp) {
    const cli_config *cfg = cmp->cfg;
    const int32_t total = cfg->num_acts * cmp->num_seeds;
    char path[4096];
    log_path(path, sizeof path, cmp, "compare.jsonl");
    FILE *f = cli_log_open(path, 0);
    if (!f) return CLI_EXIT_FAILURE;
    for (int32_t i = 0; i < total; i++)
        if (cmp->done[i]) cli_run_write(f, cfg, &cmp->runs[i], cmp->eps, cmp->recipe);
    fclose(f);

    log_path(path, sizeof path, cmp, "compare.csv");
    f = cli_log_open(path, 0);
    if (!f) return CLI_EXIT_FAILURE;
    fputs("activation,seed,clean_acc,fgsm_acc,", f);
    for (int32_t i = 0; i < cfg->num_pgd; i++) fprintf(f, "pgd%d_acc,", (int)cfg->pgd_steps[i]);
    fputs("apgd_acc,train_seconds,images_per_sec,epochs,best_epoch,flags\n", f);
    for (int32_t i = 0; i < total; i++) {
        const cli_run *r = &cmp->runs[i];
        if (!cmp->done[i]) continue;
        cli_csv_str(f, sat_activation_name(r->act), 0);
        fprintf(f, "%llu,", (unsigned long long)r->seed);
        cli_csv_num(f, r->eval.clean_accuracy, 0);
        cli_csv_num(f, r->eval.fgsm_accuracy, 0);
        for (int32_t k = 0; k < cfg->num_pgd; k++) cli_csv_num(f, r->eval.robust_accuracy[k], 0);
        cli_csv_num(f, cfg->apgd ? r->eval.apgd_accuracy : NAN, 0);
        cli_csv_num(f, r->train.seconds, 0);
        cli_csv_num(f, r->train.images_per_sec, 0);
        cli_csv_num(f, r->train.epochs_done, 0);
        cli_csv_num(f, r->train.best_epoch, 0);
        cli_csv_num(f, r->eval.flags, 1);
    }
    fclose(f);
    return CLI_EXIT_OK;
}

/* The run's result file, written whole or not at all. */
static int save_run(const compare *cmp, int32_t i) {
    char path[4096], tmp[4200];
    run_path(path, sizeof path, cmp, i, "run-", ".json");
    FILE *f = cli_replace_open(path, tmp, sizeof tmp);
    if (!f) return CLI_EXIT_FAILURE;
    cli_run_write(f, cmp->cfg, &cmp->runs[i], cmp->eps, cmp->recipe);
    return cli_replace_commit(f, tmp, path) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* A finished run read back from its result file; 0 when there is one for this recipe. */
static int load_run(compare *cmp, int32_t i) {
    char path[4096], line[8192];
    run_path(path, sizeof path, cmp, i, "run-", ".json");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    return ok ? cli_run_parse(line, cmp->cfg, cmp->recipe, &cmp->runs[i]) : -1;
}

static void print_run(const compare *cmp, int32_t i) {
    const cli_run *r = &cmp->runs[i];
    printf("[%s] test clean %.2f%%", cmp->names[i], 100.0 * r->eval.clean_accuracy);
    for (int32_t k = 0; k < cmp->cfg->num_pgd; k++)
        printf(", PGD-%d %.2f%%", (int)cmp->cfg->pgd_steps[k], 100.0 * r->eval.robust_accuracy[k]);
    printf("\n");
    fflush(stdout);
}

/* In the parent: job `k` (run todo[k]) has sent its result. */
static int run_done(void *user, int32_t k, const char *text) {
    compare *cmp = user;
    const int32_t i = cmp->todo[k];
    if (cli_run_parse(text, cmp->cfg, cmp->recipe, &cmp->runs[i])) return CLI_EXIT_FAILURE;
    cmp->done[i] = 1;
    if (!cmp->cfg->quiet) print_run(cmp, i);
    if (!cmp->cfg->log_dir) return CLI_EXIT_OK;
    int rc = save_run(cmp, i);
    return rc ? rc : write_logs(cmp);
}

/* ---- the command ---------------------------------------------------------------------- */

static void print_summary(const compare *cmp, double seconds) {
    const cli_config *cfg = cmp->cfg;
    char dur[32];
    cli_format_duration(dur, sizeof dur, seconds);
    printf("\n%s-trained %s, %s eps %.4g, %d attack steps, %d epoch%s, %d seed%s, evaluated on "
           "%lld test examples (total time %s)\n",
           cfg->method == SAT_TRAIN_STANDARD ? "standard" :
           cfg->method == SAT_TRAIN_FAST ? "Fast-AT" :
           cfg->method == SAT_TRAIN_FREE ? "Free-AT" :
           cfg->method == SAT_TRAIN_TRADES ? "TRADES" : "PGD-AT",
           cfg->spec_file ? cfg->spec_file : cfg->preset, cfg->norm == SAT_NORM_L2 ? "L2" : "Linf",
           (double)cmp->eps, (int)cfg->steps, (int)cfg->epochs, cfg->epochs == 1 ? "" : "s",
           (int)cmp->num_seeds, cmp->num_seeds == 1 ? "" : "s", (long long)cmp->runs[0].n_test,
           dur);
    if (cfg->attack_backward != SAT_ACT_SAME || cfg->train_backward != SAT_ACT_SAME)
        printf("backward derivative: attacker %s, optimizer %s (evaluation: the true one)\n",
               cfg->attack_backward == SAT_ACT_SAME ? "own" : sat_activation_name(cfg->attack_backward),
               cfg->train_backward == SAT_ACT_SAME ? "own" : sat_activation_name(cfg->train_backward));
    printf("\n");
    print_tables(stdout, cmp);
    const int32_t total = cfg->num_acts * cmp->num_seeds;
    for (int32_t i = 0; i < total; i++) {
        const cli_run *r = &cmp->runs[i];
        if (r->eval.flags) {
            printf("\n%s: gradient-masking checks raised:\n", cmp->names[i]);
            cli_print_flags(stdout, r->eval.flags, "  ");
        }
        if (r->train.catastrophic)
            printf("\n%s: catastrophic overfitting at epoch %d (the model of epoch %d was used)\n",
                   cmp->names[i], (int)r->train.catastrophic_epoch, (int)r->train.best_epoch);
    }
}

int cli_cmd_compare(const cli_config *cfg) {
    compare *cmp = calloc(1, sizeof *cmp);
    if (!cmp) {
        fprintf(stderr, "%s: out of memory\n", cli_prog);
        return CLI_EXIT_FAILURE;
    }
    const double t_start = cli_now();
    cmp->cfg = cfg;
    cmp->eps = !isnan(cfg->eps) ? cfg->eps : cfg->format == SAT_DATA_CIFAR10 ? 8.0f / 255.0f : 0.1f;
    cmp->recipe = cli_recipe_hash(cfg);
    cmp->num_seeds = cfg->num_seeds > 0 ? cfg->num_seeds : 1;
    cmp->seeds = cfg->num_seeds > 0 ? cfg->seeds : &cfg->seed;
    const int32_t total = cfg->num_acts * cmp->num_seeds;
    const char *names[CLI_MAX_ACTS * CLI_MAX_SEEDS];
    int32_t ntodo = 0;
    int rc = cfg->log_dir && make_dir(cfg->log_dir) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    for (int32_t i = 0; i < total && !rc; i++) {
        cli_run *r = &cmp->runs[i];
        r->act = cfg->acts[i / cmp->num_seeds];
        r->seed = cmp->seeds[i % cmp->num_seeds];
        snprintf(cmp->names[i], sizeof cmp->names[i], "%s-seed%llu", sat_activation_name(r->act),
                 (unsigned long long)r->seed);
        if (cfg->log_dir && load_run(cmp, i) == 0) {
            r->resumed = cmp->done[i] = 1;
            if (!cfg->quiet) {
                printf("[%s] finished before: results read back from %s/run-%s.json\n",
                       cmp->names[i], cfg->log_dir, cmp->names[i]);
                print_run(cmp, i);
            }
        } else {
            names[ntodo] = cmp->names[i];
            cmp->todo[ntodo++] = i;
        }
    }
    if (!rc && cfg->log_dir) rc = write_logs(cmp);
    if (!rc) rc = cli_run_jobs(ntodo, names, cfg->jobs, run_one, run_done, cmp);
    if (rc) {
        int32_t finished = 0;
        for (int32_t i = 0; i < total; i++) finished += cmp->done[i];
        fprintf(stderr, "%s: compare stopped with %d of %d runs finished%s\n", cli_prog,
                (int)finished, (int)total,
                cfg->log_dir ? "; the same command resumes it, reusing the finished runs" : "");
        free(cmp);
        return rc;
    }
    print_summary(cmp, cli_now() - t_start);
    if (cfg->log_dir) {
        char path[4096];
        log_path(path, sizeof path, cmp, "compare.md");
        FILE *f = cli_log_open(path, 0);
        if (f) {
            print_tables(f, cmp);
            fclose(f);
        }
        rc = f ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        if (!rc)
            printf("\nresults written to %s/compare.{jsonl,csv,md}; plots: "
                   "/usr/bin/python3 examples/plot_logs.py %s\n",
                   cfg->log_dir, cfg->log_dir);
    }
    fflush(stdout);
    free(cmp);
    return rc;
}
