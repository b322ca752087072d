/* cli.h - shared declarations of sat-cli: the parsed configuration, exit codes, and the
 * functions each source file provides (main.c parses, train.c trains, eval.c evaluates,
 * compare.c runs the activation comparison, runs.c runs its trainings as child processes,
 * run_record.c writes and reads back one run's results, stats.c has the statistics over
 * seeds, progress.c draws progress, metrics.c writes JSON lines and CSV). */
#ifndef SAT_CLI_H
#define SAT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "sat.h"

/* Exit codes: documented in `sat-cli --help` and docs/cli.md. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1 /* internal or other failure */
#define CLI_EXIT_USAGE 2   /* bad command line */
#define CLI_EXIT_DATA 3    /* missing or bad data set, model file, spec or checkpoint */
#define CLI_EXIT_NUMERIC 4 /* NaN/Inf during training or evaluation */
#define CLI_EXIT_INTERRUPTED 5 /* train stopped by SIGINT/SIGTERM after saving the checkpoint */

#define CLI_MAX_ACTS 16
#define CLI_MAX_SEEDS 64

typedef struct cli_config {
    const char *command; /* "train", "eval", "compare", "export" */

    /* data */
    const char *data_dir;
    int32_t format;        /* SAT_DATA_* */
    int64_t train_limit;   /* 0: all */
    int64_t test_limit;    /* 0: all */
    int64_t val;           /* held-out validation examples; 0: none */
    uint32_t augment;      /* SAT_AUG_* */

    /* model */
    const char *preset;    /* used when spec_file is NULL */
    const char *spec_file;
    const char *init_onnx; /* train: start from this ONNX model, its ReLUs made `act` */
    int32_t act;           /* SAT_ACT_* */
    float act_param;       /* NaN: default */
    /* the paper's ablation: the derivative of the backward pass (SAT_ACT_SAME: the
     * forward function's own), for the attacker and for the optimizer */
    int32_t attack_backward;
    float attack_backward_param; /* NaN: default */
    int32_t train_backward;
    float train_backward_param;  /* NaN: default */

    /* threat model and training method */
    int32_t method;        /* SAT_TRAIN_* */
    int32_t norm;          /* SAT_NORM_* */
    float eps;             /* NaN: 0.1 for IDX data, 8/255 for CIFAR-10 (train); model's (eval) */
    int32_t steps;
    float step_size;       /* NaN: library default */
    float trades_beta;
    int32_t free_replays;
    int32_t epochs;
    int64_t batch;

    /* optimizer */
    int32_t optimizer;     /* SAT_OPT_* */
    float lr;              /* NaN: 0.05 for SGD, 0.001 for Adam(W) */
    float momentum;
    float wd;
    int32_t schedule;      /* SAT_SCHED_* */
    float warmup;          /* epochs of linear warm-up */

    /* runtime */
    int32_t threads;
    uint64_t seed;
    int32_t quiet;
    int32_t activation_checkpointing; /* the trained model's (not recorded: no effect on results) */

    /* outputs */
    const char *out;
    const char *checkpoint;
    int32_t resume;
    const char *log;

    /* validation during training */
    int32_t val_steps;     /* PGD-k on the validation split; default 10 */

    /* evaluation */
    const char *model_file;
    const char *onnx_file; /* eval: an ONNX model instead of a model file; export: the file written */
    int32_t num_pgd;
    int32_t pgd_steps[SAT_EVAL_MAX_STEPS];
    int32_t restarts;
    int32_t apgd;
    int32_t apgd_steps;
    int32_t autoattack;    /* 1: also run AutoAttack (sat_autoattack) */
    int32_t aa_version;    /* SAT_AA_*; default standard */

    /* export */
    int32_t opset;         /* 0: the library's default */
    int32_t batch_dim;     /* 0: symbolic */

    /* compare */
    int32_t num_acts;
    int32_t acts[CLI_MAX_ACTS];
    const char *log_dir;
    int32_t num_seeds;     /* 0: the one --seed */
    uint64_t seeds[CLI_MAX_SEEDS];
    int32_t jobs;          /* trainings run at once, each in its own process */
} cli_config;

/* ---- autoattack.c ---- */
/* Runs AutoAttack (cfg->aa_version, cfg->norm, eps, cfg->seed) on the data set and prints
 * the robust accuracy after each attack and what its flags mean; *res receives the result.
 * Returns an exit code. */
int cli_autoattack(const cli_config *cfg, sat_model *model, sat_dataset *ds, float eps,
                   sat_autoattack_result *res);
/* The name of an attack of the sequence (SAT_AA_ATTACK_*), e.g. "APGD-CE". */
const char *cli_aa_attack_name(int32_t attack);

/* ---- main.c ---- */
extern const char *cli_prog; /* "sat-cli" */
/* Maps a library status to an exit code (bad file -> 3, numeric -> 4, ...). */
int cli_exit_code(int32_t status);
/* Prints "sat-cli: WHAT: DETAIL (status)" to stderr and returns the exit code for status. */
int cli_fail(int32_t status, const char *what, const char *detail);
/* Seconds from a monotonic clock. */
double cli_now(void);

/* ---- setup (train.c) ---- */
/* Loads one split of cfg's data set and applies the limit; checks the directory first so
 * that a missing one gets a clear message. Returns an exit code. */
int cli_load_split(const cli_config *cfg, sat_context *ctx, int32_t split, int64_t limit,
                   sat_dataset **out);
/* Splits cfg->val examples off `train` into *val (NULL when cfg->val is 0); at most a fifth
 * of a small training set. Returns an exit code. */
int cli_split_val(const cli_config *cfg, sat_dataset *train, sat_dataset **val);
/* Creates the context with cfg's threads and seed. Returns an exit code. */
int cli_context(const cli_config *cfg, sat_context **out);

/* What one training run produced. */
typedef struct cli_train_result {
    sat_model *model;      /* the best model (robust early stopping), caller destroys */
    double seconds;        /* training wall time, validation included */
    double images_per_sec; /* training throughput (adversarial steps only) */
    int32_t epochs_done;
    int32_t best_epoch;    /* 1-based; 0 without validation */
    float best_val_clean;
    float best_val_robust;
    int32_t catastrophic;  /* 1 if catastrophic overfitting was detected */
    int32_t catastrophic_epoch;
} cli_train_result;

/* Trains one model with cfg's recipe and activation `act` on `train`, validating on `val`
 * (may be NULL). Writes the best model to out_path and the per-epoch log to log_path (both
 * may be NULL). `label` prefixes progress lines (may be NULL). Returns an exit code. */
int cli_train_model(const cli_config *cfg, sat_context *ctx, sat_dataset *train,
                    sat_dataset *val, int32_t act, const char *out_path, const char *log_path,
                    const char *label, cli_train_result *res);
int cli_cmd_train(const cli_config *cfg);

/* ---- eval.c ---- */
/* Evaluates model on ds with cfg's attack list; eps is the radius. Returns an exit code. */
int cli_evaluate(const cli_config *cfg, sat_model *model, sat_dataset *ds, float eps,
                 sat_eval_result *res);
/* Writes the gradient-masking flags in words, one per line with the given indent. */
void cli_print_flags(FILE *f, uint32_t flags, const char *indent);
int cli_cmd_eval(const cli_config *cfg);
/* export.c: sat-cli export, a model file written as ONNX. */
int cli_cmd_export(const cli_config *cfg);

/* ---- compare.c ---- */
int cli_cmd_compare(const cli_config *cfg);

/* ---- run_record.c: one compare run (one activation, one seed) ---- */
typedef struct cli_run {
    int32_t act;
    uint64_t seed;
    cli_train_result train; /* model is always NULL here */
    sat_eval_result eval;
    int64_t n_test;
    int32_t resumed;        /* read back from the log directory, not recomputed */
} cli_run;

/* A hash of every option that changes a run's numbers (not the activation and seed, which
 * name the run, nor threads, jobs and output options) and of the library's version and
 * build. A result is reused only under the same hash. */
uint64_t cli_recipe_hash(const cli_config *cfg);
/* Writes the run's raw results as one JSON line (the line of compare.jsonl). */
void cli_run_write(FILE *f, const cli_config *cfg, const cli_run *r, float eps, uint64_t recipe);
/* Reads a line written by cli_run_write back into *r (act and seed must already be set and
 * must match). Returns 0 on success, -1 when the line is damaged or of another recipe. */
int cli_run_parse(const char *line, const cli_config *cfg, uint64_t recipe, cli_run *r);

/* ---- runs.c: independent jobs as child processes ---- */
/* Runs in the child: does job `index` and writes its result text to `result`. Returns an
 * exit code. */
typedef int (*cli_job_fn)(void *user, int32_t index, FILE *result);
/* Runs in the parent when job `index` has succeeded, with the text it wrote. Returns an
 * exit code. */
typedef int (*cli_job_done_fn)(void *user, int32_t index, const char *result);
/* Runs jobs 0..n-1, each in a forked process, at most `jobs` at a time. A job that fails
 * (non-zero exit, killed, or done() failing) is reported on stderr with names[index]; no
 * new job starts after that, the running ones finish. Returns 0 or the first failure's
 * exit code. */
int cli_run_jobs(int32_t n, const char *const *names, int32_t jobs, cli_job_fn run,
                 cli_job_done_fn done, void *user);

/* ---- stats.c ---- */
double cli_mean(const double *x, int32_t n);
double cli_stddev(const double *x, int32_t n); /* sample (n-1); NaN for n < 2 */
double cli_t975(int32_t df);                   /* two-sided 95% quantile of Student's t */
/* Mean of a[i]-b[i] and its 95% confidence interval [lo, hi] (Student t with n-1 degrees
 * of freedom over the n paired differences; NaN bounds for n < 2). n <= CLI_MAX_SEEDS. */
void cli_paired_ci(const double *a, const double *b, int32_t n, double *mean, double *lo,
                   double *hi);

/* ---- progress.c ---- */
typedef struct cli_progress {
    int enabled;       /* a bar is drawn (stderr is a terminal and not quiet) */
    int drawn;         /* a bar is on screen */
    double last_draw;
    double run_start;
    int32_t epochs;
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet, int32_t epochs);
/* Redraws the bar (at most ~10 times a second). */
void cli_progress_update(cli_progress *p, const char *label, int32_t epoch, int64_t batch_done,
                         int64_t batch_total, int64_t images, double epoch_seconds, float loss,
                         float adv_acc);
/* Erases the bar so that a normal line can be printed. */
void cli_progress_clear(cli_progress *p);
/* A sat_progress_fn (user: a cli_progress) that draws one long library call (evaluation,
 * AutoAttack) as a bar with its ETA, and erases it when the call is done. Never cancels. */
int32_t cli_progress_report(void *user, const char *what, int64_t done, int64_t total);
/* Formats seconds as "1h02m", "3m05s" or "12.3s". */
void cli_format_duration(char *buf, size_t size, double seconds);

/* ---- metrics.c ---- */
/* A JSON object being written on one line. */
typedef struct cli_json {
    FILE *f;
    int fields;
} cli_json;

void cli_json_begin(cli_json *j, FILE *f);
void cli_json_str(cli_json *j, const char *key, const char *value);
void cli_json_int(cli_json *j, const char *key, int64_t value);
void cli_json_num(cli_json *j, const char *key, double value); /* NaN/Inf -> null */
/* The number (null: NaN) of "key" in one JSON line as this program writes it; -1 if absent. */
int cli_json_line_num(const char *line, const char *key, double *v);
void cli_json_bool(cli_json *j, const char *key, int value);
/* "key": [v1, v2, ...] */
void cli_json_int_array(cli_json *j, const char *key, const int32_t *v, int32_t n);
void cli_json_num_array(cli_json *j, const char *key, const float *v, int32_t n);
void cli_json_end(cli_json *j); /* closes the object, writes a newline and flushes */
/* Opens a log for writing (append != 0: keep earlier lines). Prints an error and returns
 * NULL on failure. */
FILE *cli_log_open(const char *path, int append);
/* A file replaced whole or not at all: cli_replace_open writes to "<path>.tmp" (tmp holds
 * its name, cap >= strlen(path) + 5); cli_replace_commit closes it and renames it over
 * path. On any failure both print an error, remove the temporary file and return NULL / -1,
 * and path keeps what it held. */
FILE *cli_replace_open(const char *path, char *tmp, size_t cap);
int cli_replace_commit(FILE *f, const char *tmp, const char *path);
/* A CSV cell: quoted if needed. */
void cli_csv_str(FILE *f, const char *s, int last);
void cli_csv_num(FILE *f, double v, int last);

#endif
