/* train.c - `sat-cli train`: data and model setup, the epoch loop with robust early
 * stopping (the best model by held-out PGD accuracy is kept), catastrophic-overfitting
 * detection for FGSM-based methods, checkpoints, the per-epoch JSON log, and stopping
 * cleanly on SIGINT or SIGTERM. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Catastrophic overfitting (Wong et al.): PGD accuracy falls below this fraction of its
 * best while FGSM accuracy stays high. */
#define CO_PGD_FRACTION 0.3f
#define CO_FGSM_MIN 0.5f /* FGSM accuracy at least half the clean accuracy */

/* SIGINT (Ctrl-C) and SIGTERM during `sat-cli train`: the handler records the signal, puts
 * the previous actions back and says so on stderr (only async-signal-safe calls); the
 * training loop looks at the flag after every step, writes the checkpoint and stops with
 * CLI_EXIT_INTERRUPTED. So a second signal during that shutdown gets the default action
 * and ends the program at once; the files on disk are then the previous ones or the new
 * ones, never partial (every save is a temporary file renamed into place). A signal that
 * was ignored when the program started (nohup) stays ignored. */
static volatile sig_atomic_t stop_signal;
static struct sigaction prev_int, prev_term;

static void on_stop_signal(int sig) {
    static const char msg[] = "sat-cli: stopping after the current step to save the checkpoint "
                              "(a second signal stops at once)\n";
    stop_signal = sig;
    sigaction(SIGINT, &prev_int, NULL);
    sigaction(SIGTERM, &prev_term, NULL);
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing to do about it in a handler */
    }
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, NULL, &prev_int);
    sigaction(SIGTERM, NULL, &prev_term);
    if (prev_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
    if (prev_term.sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, NULL);
}

/* What the model files of a run say about it after `epochs` epochs. */
static sat_model_meta run_meta(const cli_config *cfg, int32_t norm, float eps, int64_t epochs,
                               float clean, float robust) {
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    meta.norm = norm;
    meta.eps = eps;
    meta.method = cfg->method;
    meta.steps = cfg->steps;
    meta.epochs = (int32_t)epochs;
    meta.clean_accuracy = clean;
    meta.robust_accuracy = robust;
    return meta;
}

/* Writes the checkpoint at the loop position (epoch, next batch) after a stop signal and
 * says what was done. Returns the exit code. */
static int stop_after_signal(const cli_config *cfg, sat_trainer *trainer, const sat_model_meta *meta,
                             const char *out_path, int64_t epoch, int64_t batch_done,
                             int64_t batches, int32_t epochs_done) {
    const char *sig = stop_signal == SIGTERM ? "SIGTERM" : "SIGINT";
    char where[128];
    if (batch_done == 0)
        snprintf(where, sizeof where, "after epoch %lld", (long long)epoch);
    else
        snprintf(where, sizeof where, "after step %lld of %lld in epoch %lld", (long long)batch_done,
                 (long long)batches, (long long)epoch + 1);
    if (!cfg->checkpoint) {
        fprintf(stderr, "%s: interrupted by %s: stopped %s; no --checkpoint was given, so the run "
                        "cannot be resumed%s%s\n",
                cli_prog, sig, where, epochs_done > 0 && out_path ? "; the model so far is in " : "",
                epochs_done > 0 && out_path ? out_path : "");
        return CLI_EXIT_INTERRUPTED;
    }
    if (batch_done > 0) {
        /* An epoch boundary was checkpointed already at the end of the epoch. */
        int32_t st = sat_checkpoint_save(trainer, meta, epoch, batch_done, cfg->checkpoint);
        if (st) {
            char what[1100];
            snprintf(what, sizeof what, "interrupted by %s, and cannot save the checkpoint to '%s'",
                     sig, cfg->checkpoint);
            return cli_fail(st, what, sat_trainer_last_error(trainer));
        }
    }
    fprintf(stderr, "%s: interrupted by %s: stopped %s; checkpoint saved to %s; run the same "
                    "command with --resume to continue\n",
            cli_prog, sig, where, cfg->checkpoint);
    return CLI_EXIT_INTERRUPTED;
}

static const char *method_name(int32_t m) {
    switch (m) {
    case SAT_TRAIN_STANDARD: return "standard";
    case SAT_TRAIN_PGD: return "pgd";
    case SAT_TRAIN_FAST: return "fast";
    case SAT_TRAIN_FREE: return "free";
    case SAT_TRAIN_TRADES: return "trades";
    default: return "?";
    }
}

int cli_context(const cli_config *cfg, sat_context **out) {
    sat_context_opts o;
    sat_context_opts_init(&o, sizeof o);
    o.num_threads = cfg->threads;
    o.seed = cfg->seed;
    int32_t st = sat_context_create(&o, out);
    if (st) return cli_fail(st, "cannot create a context", sat_last_error());
    return CLI_EXIT_OK;
}

int cli_load_split(const cli_config *cfg, sat_context *ctx, int32_t split, int64_t limit,
                   sat_dataset **out) {
    struct stat sb;
    if (stat(cfg->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "%s: data directory '%s' %s\n", cli_prog, cfg->data_dir,
                stat(cfg->data_dir, &sb) != 0 ? "does not exist" : "is not a directory");
        if (strcmp(cfg->data_dir, sat_default_data_dir()) == 0)
            fprintf(stderr, "%s: install Fashion-MNIST with `apt-get install "
                            "dataset-fashion-mnist`, or pass --data DIR\n",
                    cli_prog);
        return CLI_EXIT_DATA;
    }
    int32_t st = sat_dataset_load(ctx, cfg->format, cfg->data_dir, split, out);
    if (st) {
        char what[1200];
        snprintf(what, sizeof what, "cannot load the %s split from '%s'",
                 split == SAT_SPLIT_TRAIN ? "training" : "test", cfg->data_dir);
        return cli_fail(st, what, sat_last_error());
    }
    if (limit > 0 && limit < sat_dataset_size(*out)) {
        st = sat_dataset_truncate(*out, limit);
        if (st) {
            int rc = cli_fail(st, "cannot limit the data set", sat_dataset_last_error(*out));
            sat_dataset_destroy(*out);
            *out = NULL;
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

/* Per-channel mean and standard deviation of the training images. */
static void channel_stats(sat_dataset *ds, float *mean, float *std) {
    int32_t c, h, w;
    sat_dataset_shape(ds, &c, &h, &w, NULL);
    int64_t n = sat_dataset_size(ds), hw = (int64_t)h * w;
    const float *x = sat_dataset_images(ds);
    for (int32_t k = 0; k < c; k++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + k) * hw;
            for (int64_t j = 0; j < hw; j++) {
                s += p[j];
                s2 += (double)p[j] * p[j];
            }
        }
        double cnt = (double)n * (double)hw, m = s / cnt, var = s2 / cnt - m * m;
        mean[k] = (float)m;
        std[k] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
}

static char *read_text_file(const char *path) {
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open model spec '%s': %s\n", cli_prog, path,
                errno ? strerror(errno) : "unknown error");
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s) {
        if (len + 1 >= cap) {
            if (cap > (1u << 24)) {
                free(s);
                s = NULL;
                fprintf(stderr, "%s: model spec '%s' is larger than 16 MiB\n", cli_prog, path);
                break;
            }
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
        size_t r = fread(s + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) {
            s[len] = 0;
            break;
        }
    }
    fclose(f);
    return s;
}

/* The data's shape against the model's: a mismatch is the user's data or model. */
static int check_shape(sat_model **model, int32_t c, int32_t h, int32_t w, int32_t classes) {
    int32_t mc, mh, mw, mk;
    sat_model_shape(*model, &mc, &mh, &mw, &mk);
    if (mc != c || mh != h || mw != w || mk < classes) {
        fprintf(stderr, "%s: the model takes %dx%dx%d inputs and %d classes, the data has "
                        "%dx%dx%d images and %d classes\n",
                cli_prog, mc, mh, mw, mk, c, h, w, classes);
        sat_model_destroy(*model);
        *model = NULL;
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

/* --init-onnx: the ONNX model with its ReLUs replaced by act (the paper's change before
 * fine-tuning), its weights and input normalisation kept. */
static int import_onnx(const cli_config *cfg, sat_context *ctx, int32_t act, int64_t max_batch, int32_t c,
                       int32_t h, int32_t w, int32_t classes, sat_model **out) {
    sat_onnx_import_opts o;
    sat_onnx_import_opts_init(&o, sizeof o);
    o.replace_act_from = act == SAT_ACT_RELU ? -1 : SAT_ACT_RELU;
    o.replace_act_to = act;
    o.replace_act_param = cfg->act_param;
    o.max_batch = (int32_t)max_batch;
    int32_t st = sat_model_load_onnx(ctx, cfg->init_onnx, &o, out);
    if (st) {
        char what[1100];
        snprintf(what, sizeof what, "cannot import the ONNX model '%s'", cfg->init_onnx);
        fprintf(stderr, "%s: %s: %s\n", cli_prog, what, sat_last_error());
        return st == SAT_E_NOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_DATA;
    }
    return check_shape(out, c, h, w, classes);
}

/* The model for cfg with activation act, normalised with the training data's statistics. */
static int build_model(const cli_config *cfg, sat_context *ctx, sat_dataset *train, int32_t act,
                       int64_t max_batch, sat_model **out) {
    int32_t c, h, w, classes;
    sat_dataset_shape(train, &c, &h, &w, &classes);
    if (cfg->init_onnx) return import_onnx(cfg, ctx, act, max_batch, c, h, w, classes, out);
    char *spec = NULL;
    int from_lib = 0;
    if (cfg->spec_file) {
        spec = read_text_file(cfg->spec_file);
        if (!spec) return CLI_EXIT_DATA;
    } else {
        float mean[64], std[64];
        channel_stats(train, mean, std);
        int32_t st = sat_preset_spec(cfg->preset, c, h, w, classes, mean, std, &spec);
        if (st) return cli_fail(st, "cannot build the preset model", sat_last_error());
        from_lib = 1;
    }
    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    mo.activation = act;
    mo.act_param = cfg->act_param;
    mo.max_batch = (int32_t)max_batch;
    mo.seed = cfg->seed;
    int32_t st = sat_model_create(ctx, spec, &mo, out);
    if (from_lib)
        sat_free(spec);
    else
        free(spec);
    if (st) {
        if (cfg->spec_file) {
            char what[1100];
            snprintf(what, sizeof what, "bad model spec '%s'", cfg->spec_file);
            fprintf(stderr, "%s: %s: %s\n", cli_prog, what, sat_last_error());
            return st == SAT_E_NOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_DATA;
        }
        return cli_fail(st, "cannot create the model", sat_last_error());
    }
    return check_shape(out, c, h, w, classes);
}

/* The paper's ablation: cfg's backward derivatives (own: 1) or the forward function's own
 * derivative everywhere (own: 0), which is what validation, evaluation and the saved model
 * use, so that robustness is measured against the model's true gradient. */
static int set_backward(const cli_config *cfg, sat_model *model, int own) {
    int32_t st = own ? sat_model_set_backward(model, cfg->attack_backward,
                                              cfg->attack_backward_param, cfg->train_backward,
                                              cfg->train_backward_param)
                     : sat_model_set_backward(model, SAT_ACT_SAME, NAN, SAT_ACT_SAME, NAN);
    if (st) return cli_fail(st, "cannot set the backward derivatives", sat_model_last_error(model));
    return CLI_EXIT_OK;
}

static float default_eps(const cli_config *cfg) {
    if (!isnan(cfg->eps)) return cfg->eps;
    return cfg->format == SAT_DATA_CIFAR10 ? 8.0f / 255.0f : 0.1f;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Before a resumed run appends to its epoch log (JSON lines): keeps the lines of epochs
 * 1..upto_epoch, the ones its checkpoint covers, and drops any later line (written just
 * before an interruption that came ahead of the checkpoint), so that every epoch is in
 * the log once. Adds up the kept epochs' time with validation, their training time and
 * their images (a full epoch trains epoch_images). The part of an epoch cut short by the
 * interruption was never logged and is not counted. A missing log keeps nothing; returns
 * -1 (with a message) when the log cannot be rewritten. */
static int resume_epoch_log(const char *path, int64_t upto_epoch, int64_t epoch_images,
                            double *seconds, double *train_seconds, int64_t *images) {
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    char tmp[4200];
    FILE *out = cli_replace_open(path, tmp, sizeof tmp);
    if (!out) {
        fclose(in);
        return -1;
    }
    int bad = 0;
    char line[8192];
    while (!bad && fgets(line, sizeof line, in)) {
        double epoch, secs, ips;
        if (cli_json_line_num(line, "epoch", &epoch) || epoch < 1 || epoch > (double)upto_epoch)
            continue;
        bad = fputs(line, out) == EOF;
        if (cli_json_line_num(line, "seconds", &secs) || !isfinite(secs) ||
            cli_json_line_num(line, "images_per_sec", &ips) || !(ips > 0))
            continue;
        *seconds += secs;
        *train_seconds += (double)epoch_images / ips;
        *images += epoch_images;
    }
    fclose(in);
    return cli_replace_commit(out, tmp, path);
}

int cli_train_model(const cli_config *cfg, sat_context *ctx, sat_dataset *train,
                    sat_dataset *val, int32_t act, const char *out_path, const char *log_path,
                    const char *label, cli_train_result *res) {
    memset(res, 0, sizeof *res);
    res->best_val_clean = NAN;
    res->best_val_robust = NAN;
    const float eps = default_eps(cfg);
    const int32_t norm = cfg->norm < 0 ? SAT_NORM_LINF : cfg->norm;
    const int64_t n = sat_dataset_size(train);
    const int64_t batch = cfg->batch > 0 ? cfg->batch : 128;
    const int64_t eval_batch = batch < 256 ? 256 : batch;
    const int64_t batches = (n + batch - 1) / batch;

    sat_model *model = NULL;
    sat_optimizer *opt = NULL;
    sat_trainer *trainer = NULL;
    float *x = NULL, *best_params = NULL, *best_state = NULL;
    int32_t *y = NULL;
    FILE *log = NULL;
    if (act == SAT_ACT_DEFAULT && cfg->init_onnx) act = SAT_ACT_SILU; /* the imported ReLUs become SiLU */
    int rc = build_model(cfg, ctx, train, act, eval_batch, &model);
    if (!rc && act == SAT_ACT_DEFAULT) { /* the preset's own (its original network's), or SiLU */
        sat_model_opts mo;
        sat_model_opts_init(&mo, sizeof mo);
        if (sat_model_get_opts(model, &mo) == SAT_OK) act = mo.activation;
    }
    if (!rc) rc = set_backward(cfg, model, 1);
    if (!rc && sat_model_set_activation_checkpointing(model, cfg->activation_checkpointing) != SAT_OK)
        rc = cli_fail(SAT_E_INVALID_ARG, "cannot set activation checkpointing", sat_model_last_error(model));
    if (rc) {
        sat_model_destroy(model);
        return rc;
    }

    int32_t c, h, w;
    sat_dataset_shape(train, &c, &h, &w, NULL);
    const int64_t per = (int64_t)c * h * w;
    const int64_t np = sat_model_param_count(model), ns = sat_model_state_count(model);

    sat_optimizer_opts oo;
    sat_optimizer_opts_init(&oo, sizeof oo);
    oo.kind = cfg->optimizer;
    oo.lr = !isnan(cfg->lr) ? cfg->lr : cfg->optimizer == SAT_OPT_SGD ? 0.05f : 0.001f;
    oo.momentum = cfg->momentum;
    oo.weight_decay = cfg->wd;
    oo.schedule = cfg->schedule;
    oo.total_steps = (int64_t)cfg->epochs * batches;
    oo.warmup_steps = (int64_t)((double)cfg->warmup * (double)batches);
    if (oo.warmup_steps >= oo.total_steps) oo.warmup_steps = oo.total_steps - 1;
    if (cfg->schedule == SAT_SCHED_STEP) {
        oo.num_milestones = 2;
        oo.milestones[0] = oo.total_steps / 2;
        oo.milestones[1] = oo.total_steps * 3 / 4;
    }
    int32_t st = sat_optimizer_create(model, &oo, &opt);
    if (st) {
        rc = cli_fail(st, "cannot create the optimizer", sat_last_error());
        goto done;
    }
    sat_trainer_opts to;
    sat_trainer_opts_init(&to, sizeof to);
    to.method = cfg->method;
    to.norm = norm;
    to.eps = eps;
    to.step_size = isnan(cfg->step_size) ? 0.0f : cfg->step_size; /* 0: automatic */
    to.steps = cfg->steps;
    to.trades_beta = cfg->trades_beta;
    to.free_replays = cfg->free_replays;
    to.seed = cfg->seed;
    st = sat_trainer_create(model, opt, &to, &trainer);
    if (st) {
        rc = cli_fail(st, "cannot create the trainer", sat_last_error());
        goto done;
    }

    x = malloc((size_t)(batch * per) * sizeof *x);
    y = malloc((size_t)batch * sizeof *y);
    best_params = malloc((size_t)(np > 0 ? np : 1) * sizeof(float));
    best_state = malloc((size_t)(ns > 0 ? ns : 1) * sizeof(float));
    if (!x || !y || !best_params || !best_state) {
        fprintf(stderr, "%s: out of memory\n", cli_prog);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }

    /* Resume: the checkpoint has the loop position (the next epoch and, after an
     * interruption, the next batch in it); the best so far is the --out file. */
    int64_t start_epoch = 0, start_batch = 0;
    float best_score = -1.0f;
    int have_best = 0;
    if (cfg->resume && cfg->checkpoint) {
        if (file_exists(cfg->checkpoint)) {
            int64_t ep = 0, bi = 0;
            st = sat_checkpoint_load(trainer, cfg->checkpoint, &ep, &bi);
            if (st) {
                char what[1100];
                snprintf(what, sizeof what, "cannot resume from '%s'", cfg->checkpoint);
                rc = cli_fail(st, what, sat_trainer_last_error(trainer));
                goto done;
            }
            if (bi > batches || (bi > 0 && ep >= cfg->epochs)) {
                fprintf(stderr, "%s: cannot resume from '%s': its position (after batch %lld in "
                                "epoch %lld) is past the end of this run (%d epochs of %lld "
                                "batches); resume with the options of the interrupted run\n",
                        cli_prog, cfg->checkpoint, (long long)bi, (long long)ep + 1,
                        (int)cfg->epochs, (long long)batches);
                rc = CLI_EXIT_DATA;
                goto done;
            }
            start_epoch = ep;
            start_batch = bi;
            if (!cfg->quiet && bi == 0)
                printf("%sresuming from %s after epoch %lld\n", label ? label : "",
                       cfg->checkpoint, (long long)ep);
            else if (!cfg->quiet)
                printf("%sresuming from %s after step %lld of %lld in epoch %lld\n",
                       label ? label : "", cfg->checkpoint, (long long)bi, (long long)batches,
                       (long long)ep + 1);
            if (out_path && val && file_exists(out_path)) {
                sat_model *prev = NULL;
                sat_model_meta meta;
                sat_model_meta_init(&meta, sizeof meta);
                if (sat_model_load(ctx, out_path, &meta, &prev) == SAT_OK &&
                    sat_model_param_count(prev) == np && sat_model_state_count(prev) == ns) {
                    memcpy(best_params, sat_model_params(prev), (size_t)np * sizeof(float));
                    if (ns) memcpy(best_state, sat_model_state(prev), (size_t)ns * sizeof(float));
                    best_score = cfg->method == SAT_TRAIN_STANDARD ? meta.clean_accuracy
                                                                     : meta.robust_accuracy;
                    if (isnan(best_score)) best_score = -1.0f;
                    have_best = 1;
                    res->best_epoch = meta.epochs;
                    res->best_val_clean = meta.clean_accuracy;
                    res->best_val_robust = meta.robust_accuracy;
                }
                sat_model_destroy(prev);
            }
        } else if (!cfg->quiet) {
            printf("%sno checkpoint at %s yet: starting from scratch\n", label ? label : "",
                   cfg->checkpoint);
        }
    }
    /* A resumed run's time and rate include the epochs before the interruption. */
    double prior_seconds = 0, prior_train_seconds = 0;
    int64_t prior_images = 0;
    if (log_path && (start_epoch > 0 || start_batch > 0) &&
        resume_epoch_log(log_path, start_epoch, sat_dataset_size(train), &prior_seconds,
                         &prior_train_seconds, &prior_images)) {
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    if (log_path) {
        log = cli_log_open(log_path, start_epoch > 0 || start_batch > 0);
        if (!log) {
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
    }

    if (!cfg->quiet) {
        char attack[96];
        if (cfg->method == SAT_TRAIN_STANDARD)
            snprintf(attack, sizeof attack, "no attack");
        else if (cfg->method == SAT_TRAIN_FAST)
            snprintf(attack, sizeof attack, "%s eps %.4g, FGSM from a random start",
                     norm == SAT_NORM_L2 ? "L2" : "Linf", (double)eps);
        else if (cfg->method == SAT_TRAIN_FREE)
            snprintf(attack, sizeof attack, "%s eps %.4g, %d replays",
                     norm == SAT_NORM_L2 ? "L2" : "Linf", (double)eps, (int)cfg->free_replays);
        else
            snprintf(attack, sizeof attack, "%s eps %.4g, %d steps",
                     norm == SAT_NORM_L2 ? "L2" : "Linf", (double)eps, (int)cfg->steps);
        printf("%s%s training, %s, %s, %lld examples (%lld validation), %lld parameters, "
               "%d thread%s\n",
               label ? label : "", method_name(cfg->method), sat_activation_name(act), attack,
               (long long)n, (long long)(val ? sat_dataset_size(val) : 0), (long long)np,
               (int)cfg->threads, cfg->threads == 1 ? "" : "s");
        fflush(stdout);
    }

    sat_eval_opts eo;
    sat_eval_opts_init(&eo, sizeof eo);
    eo.norm = norm;
    eo.eps = eps;
    eo.num_steps = 1;
    eo.steps[0] = cfg->val_steps;
    eo.seed = cfg->seed + 1;

    cli_progress prog;
    cli_progress_init(&prog, cfg->quiet, cfg->epochs);
    const double run_start = cli_now();
    double train_seconds = prior_train_seconds;
    int64_t train_images = prior_images;
    float best_pgd_seen = -1.0f;

    for (int64_t epoch = start_epoch; epoch < cfg->epochs; epoch++) {
        const double t0 = cli_now();
        st = sat_dataset_shuffle(train, cfg->seed, epoch, cfg->augment);
        if (st) {
            rc = cli_fail(st, "cannot shuffle the data", sat_dataset_last_error(train));
            goto done;
        }
        double loss_sum = 0, acc_sum = 0;
        int64_t seen = 0;
        float lr_used = sat_optimizer_lr(opt);
        for (int64_t b = epoch == start_epoch ? start_batch : 0; b < batches; b++) {
            int64_t nb = 0;
            st = sat_dataset_batch(train, b, batch, x, y, &nb);
            if (st) {
                rc = cli_fail(st, "cannot read a batch", sat_dataset_last_error(train));
                goto done;
            }
            sat_step_stats ss;
            memset(&ss, 0, sizeof ss);
            ss.struct_size = sizeof ss;
            st = sat_train_step(trainer, x, y, nb, &ss);
            if (st == SAT_OK && !isfinite(ss.loss)) st = SAT_E_NUMERIC;
            if (st) {
                cli_progress_clear(&prog);
                char what[128];
                snprintf(what, sizeof what, "training step %lld of epoch %lld failed",
                         (long long)b + 1, (long long)epoch + 1);
                rc = cli_fail(st, what, sat_trainer_last_error(trainer));
                goto done;
            }
            lr_used = ss.lr; /* the learning rate at the end of the epoch */
            loss_sum += (double)ss.loss * (double)nb;
            acc_sum += (double)ss.adv_accuracy * (double)nb;
            seen += nb;
            cli_progress_update(&prog, label, (int32_t)epoch + 1, b + 1, batches, seen,
                                cli_now() - t0, (float)(loss_sum / (double)seen),
                                (float)(acc_sum / (double)seen));
            if (stop_signal && b + 1 < batches) {
                cli_progress_clear(&prog);
                sat_model_meta meta = run_meta(cfg, norm, eps, epoch, NAN, NAN);
                rc = stop_after_signal(cfg, trainer, &meta, out_path, epoch, b + 1, batches,
                                       (int32_t)epoch);
                goto done;
            }
        }
        const double t_train = cli_now() - t0;
        train_seconds += t_train;
        train_images += seen;
        cli_progress_clear(&prog);

        /* Held-out check: clean, FGSM and PGD-k accuracy on the validation split. */
        float vclean = NAN, vpgd = NAN, vfgsm = NAN;
        int is_best = 0, co = 0;
        if ((val || out_path) && (rc = set_backward(cfg, model, 0)) != 0) goto done;
        if (val) {
            sat_eval_result er;
            memset(&er, 0, sizeof er);
            er.struct_size = sizeof er;
            st = sat_evaluate(model, &eo, sat_dataset_images(val), sat_dataset_labels(val),
                              sat_dataset_size(val), &er);
            if (st) {
                rc = cli_fail(st, "validation failed", sat_model_last_error(model));
                goto done;
            }
            vclean = er.clean_accuracy;
            vpgd = er.robust_accuracy[0];
            vfgsm = er.fgsm_accuracy;
            float score = cfg->method == SAT_TRAIN_STANDARD ? vclean : vpgd;
            if (score > best_score) {
                best_score = score;
                is_best = 1;
                res->best_epoch = (int32_t)epoch + 1;
                res->best_val_clean = vclean;
                res->best_val_robust = vpgd;
                memcpy(best_params, sat_model_params(model), (size_t)np * sizeof(float));
                if (ns) memcpy(best_state, sat_model_state(model), (size_t)ns * sizeof(float));
                have_best = 1;
            }
            if (vpgd > best_pgd_seen) best_pgd_seen = vpgd;
            if ((cfg->method == SAT_TRAIN_FAST || cfg->method == SAT_TRAIN_FREE) &&
                best_pgd_seen > 0.05f && vpgd < CO_PGD_FRACTION * best_pgd_seen &&
                isfinite(vfgsm) && vfgsm >= CO_FGSM_MIN * vclean)
                co = 1;
        }
        sat_model_meta meta = run_meta(cfg, norm, eps, epoch + 1, vclean, vpgd);
        if (out_path && (is_best || !val)) {
            st = sat_model_save(model, &meta, out_path);
            if (st) {
                char what[1100];
                snprintf(what, sizeof what, "cannot save the model to '%s'", out_path);
                rc = cli_fail(st, what, sat_model_last_error(model));
                goto done;
            }
        }
        if ((val || out_path) && (rc = set_backward(cfg, model, 1)) != 0) goto done;
        const double t_epoch = cli_now() - t0;
        const double ips = t_train > 0 ? (double)seen / t_train : 0;
        /* seen is 0 when a resumed run starts after the last step of an epoch. */
        const double tloss = seen ? loss_sum / (double)seen : NAN;
        const double tacc = seen ? acc_sum / (double)seen : NAN;
        if (log) {
            cli_json j;
            cli_json_begin(&j, log);
            cli_json_int(&j, "epoch", epoch + 1);
            cli_json_str(&j, "activation", sat_activation_name(act));
            cli_json_num(&j, "train_loss", tloss);
            cli_json_num(&j, "train_adv_acc", tacc);
            cli_json_num(&j, "val_clean_acc", vclean);
            cli_json_num(&j, "val_fgsm_acc", vfgsm);
            cli_json_num(&j, "val_pgd_acc", vpgd);
            cli_json_int(&j, "val_pgd_steps", cfg->val_steps);
            cli_json_num(&j, "lr", lr_used);
            cli_json_num(&j, "images_per_sec", ips);
            cli_json_num(&j, "seconds", t_epoch);
            cli_json_bool(&j, "best", is_best);
            cli_json_bool(&j, "catastrophic_overfitting", co);
            cli_json_end(&j);
        }
        if (!cfg->quiet) {
            printf("%sepoch %lld/%d  loss %.4f  train-adv %5.1f%%", label ? label : "",
                   (long long)epoch + 1, (int)cfg->epochs, tloss, 100.0 * tacc);
            if (val)
                printf("  val clean %5.1f%%  FGSM %5.1f%%  PGD-%d %5.1f%%", 100.0 * vclean,
                       100.0 * vfgsm, (int)cfg->val_steps, 100.0 * vpgd);
            printf("  lr %.4g  %.0f img/s  %.1fs%s\n", (double)lr_used, ips, t_epoch,
                   is_best ? "  *best" : "");
            fflush(stdout);
        }
        /* The checkpoint after the epoch's log line: a resume drops the lines of epochs
         * that its checkpoint does not cover, so an interruption between the two neither
         * loses nor repeats a line. */
        if (cfg->checkpoint) {
            st = sat_checkpoint_save(trainer, &meta, epoch + 1, 0, cfg->checkpoint);
            if (st) {
                char what[1100];
                snprintf(what, sizeof what, "cannot save the checkpoint to '%s'", cfg->checkpoint);
                rc = cli_fail(st, what, sat_trainer_last_error(trainer));
                goto done;
            }
        }
        res->epochs_done = (int32_t)epoch + 1;
        if (co) {
            res->catastrophic = 1;
            res->catastrophic_epoch = (int32_t)epoch + 1;
            printf("%scatastrophic overfitting at epoch %lld: validation PGD accuracy fell to "
                   "%.1f%% (best %.1f%%) while FGSM accuracy is %.1f%%; stopping, the model "
                   "of epoch %d is kept\n",
                   label ? label : "", (long long)epoch + 1, 100.0 * vpgd,
                   100.0 * best_pgd_seen, 100.0 * vfgsm, (int)res->best_epoch);
            fflush(stdout);
            break;
        }
        if (stop_signal && epoch + 1 < cfg->epochs) {
            rc = stop_after_signal(cfg, trainer, &meta, out_path, epoch + 1, 0, batches,
                                   (int32_t)epoch + 1);
            goto done;
        }
    }
    res->seconds = prior_seconds + (cli_now() - run_start);
    res->images_per_sec = train_seconds > 0 ? (double)train_images / train_seconds : 0;
    if (val && have_best) {
        /* Hand back the best model, not the last. */
        memcpy(sat_model_params(model), best_params, (size_t)np * sizeof(float));
        if (ns) memcpy(sat_model_state(model), best_state, (size_t)ns * sizeof(float));
    }
    rc = set_backward(cfg, model, 0);

done:
    if (log) fclose(log);
    free(x);
    free(y);
    free(best_params);
    free(best_state);
    sat_trainer_destroy(trainer);
    sat_optimizer_destroy(opt);
    if (rc == CLI_EXIT_OK)
        res->model = model;
    else
        sat_model_destroy(model);
    return rc;
}

int cli_split_val(const cli_config *cfg, sat_dataset *train, sat_dataset **val) {
    *val = NULL;
    if (cfg->val <= 0) return CLI_EXIT_OK;
    int64_t n = sat_dataset_size(train), v = cfg->val;
    if (v > n / 5) {
        v = n / 5;
        if (!cfg->quiet)
            printf("note: only %lld training examples: validation split reduced to %lld\n",
                   (long long)n, (long long)v);
    }
    if (v < 1) return CLI_EXIT_OK;
    int32_t st = sat_dataset_split(train, v, cfg->seed, val);
    if (st) return cli_fail(st, "cannot split off the validation set", sat_dataset_last_error(train));
    return CLI_EXIT_OK;
}

int cli_cmd_train(const cli_config *cfg) {
    sat_context *ctx = NULL;
    sat_dataset *train = NULL, *val = NULL;
    cli_train_result res;
    memset(&res, 0, sizeof res);
    int rc = cli_context(cfg, &ctx);
    if (rc) return rc;
    catch_stop_signals();
    rc = cli_load_split(cfg, ctx, SAT_SPLIT_TRAIN, cfg->train_limit, &train);
    if (!rc) rc = cli_split_val(cfg, train, &val);
    if (!rc) rc = cli_train_model(cfg, ctx, train, val, cfg->act, cfg->out, cfg->log, NULL, &res);
    if (!rc) {
        char dur[32];
        cli_format_duration(dur, sizeof dur, res.seconds);
        if (res.best_epoch > 0)
            printf("done in %s (%.0f img/s): best epoch %d, validation clean %.2f%%, PGD-%d "
                   "%.2f%%; model saved to %s\n",
                   dur, res.images_per_sec, (int)res.best_epoch, 100.0 * res.best_val_clean,
                   (int)cfg->val_steps, 100.0 * res.best_val_robust, cfg->out);
        else
            printf("done in %s (%.0f img/s): model saved to %s\n", dur, res.images_per_sec,
                   cfg->out);
        if (res.catastrophic)
            printf("warning: catastrophic overfitting was detected at epoch %d\n",
                   (int)res.catastrophic_epoch);
    }
    sat_model_destroy(res.model);
    sat_dataset_destroy(val);
    sat_dataset_destroy(train);
    sat_context_destroy(ctx);
    return rc;
}
