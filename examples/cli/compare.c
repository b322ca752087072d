/* compare.c - `sat-cli compare`: the same recipe trained once per activation (same data,
 * validation split, seed and schedule), each best model evaluated on the test split, and
 * one table of the results, also written as JSON lines and CSV for plotting. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct row {
    int32_t act;
    cli_train_result train;
    sat_eval_result eval;
} row;

static int make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
    }
    fprintf(stderr, "%s: cannot create log directory '%s': %s\n", cli_prog, dir,
            strerror(errno ? errno : ENOTDIR));
    return -1;
}

static void path_in(char *buf, size_t size, const char *dir, const char *prefix,
                    const char *name, const char *suffix) {
    snprintf(buf, size, "%s/%s%s%s", dir, prefix, name, suffix);
}

static void print_table(FILE *f, const cli_config *cfg, const row *rows, int32_t count) {
    fprintf(f, "| activation | clean %% |");
    for (int32_t i = 0; i < cfg->num_pgd; i++) fprintf(f, " PGD-%d %% |", (int)cfg->pgd_steps[i]);
    if (cfg->apgd) fprintf(f, " APGD %% |");
    fprintf(f, " train time | img/s |\n|---|---|");
    for (int32_t i = 0; i < cfg->num_pgd; i++) fprintf(f, "---|");
    if (cfg->apgd) fprintf(f, "---|");
    fprintf(f, "---|---|\n");
    for (int32_t r = 0; r < count; r++) {
        char dur[32];
        cli_format_duration(dur, sizeof dur, rows[r].train.seconds);
        fprintf(f, "| %s | %.2f |", sat_activation_name(rows[r].act),
                100.0 * rows[r].eval.clean_accuracy);
        for (int32_t i = 0; i < cfg->num_pgd; i++)
            fprintf(f, " %.2f |", 100.0 * rows[r].eval.robust_accuracy[i]);
        if (cfg->apgd) fprintf(f, " %.2f |", 100.0 * rows[r].eval.apgd_accuracy);
        fprintf(f, " %s | %.0f |\n", dur, rows[r].train.images_per_sec);
    }
}

static int write_logs(const cli_config *cfg, const row *rows, int32_t count, float eps,
                      int64_t n_test) {
    char path[4096];
    path_in(path, sizeof path, cfg->log_dir, "", "compare", ".jsonl");
    FILE *f = cli_log_open(path, 0);
    if (!f) return CLI_EXIT_FAILURE;
    for (int32_t r = 0; r < count; r++) {
        cli_json j;
        cli_json_begin(&j, f);
        cli_json_str(&j, "activation", sat_activation_name(rows[r].act));
        cli_json_str(&j, "model", cfg->spec_file ? cfg->spec_file : cfg->preset);
        cli_json_int(&j, "method", cfg->method);
        cli_json_num(&j, "eps", eps);
        cli_json_int(&j, "train_steps", cfg->steps);
        cli_json_int(&j, "epochs", rows[r].train.epochs_done);
        cli_json_int(&j, "best_epoch", rows[r].train.best_epoch);
        cli_json_int(&j, "n_test", n_test);
        cli_json_num(&j, "clean_acc", rows[r].eval.clean_accuracy);
        cli_json_num(&j, "fgsm_acc", rows[r].eval.fgsm_accuracy);
        cli_json_int_array(&j, "pgd_steps", cfg->pgd_steps, cfg->num_pgd);
        cli_json_num_array(&j, "pgd_acc", rows[r].eval.robust_accuracy, cfg->num_pgd);
        cli_json_num(&j, "apgd_acc", cfg->apgd ? rows[r].eval.apgd_accuracy : NAN);
        cli_json_int(&j, "flags", rows[r].eval.flags);
        cli_json_num(&j, "train_seconds", rows[r].train.seconds);
        cli_json_num(&j, "images_per_sec", rows[r].train.images_per_sec);
        cli_json_bool(&j, "catastrophic_overfitting", rows[r].train.catastrophic);
        cli_json_end(&j);
    }
    fclose(f);

    path_in(path, sizeof path, cfg->log_dir, "", "compare", ".csv");
    f = cli_log_open(path, 0);
    if (!f) return CLI_EXIT_FAILURE;
    fputs("activation,clean_acc,fgsm_acc,", f);
    for (int32_t i = 0; i < cfg->num_pgd; i++) fprintf(f, "pgd%d_acc,", (int)cfg->pgd_steps[i]);
    fputs("apgd_acc,train_seconds,images_per_sec,epochs,best_epoch,flags\n", f);
    for (int32_t r = 0; r < count; r++) {
        cli_csv_str(f, sat_activation_name(rows[r].act), 0);
        cli_csv_num(f, rows[r].eval.clean_accuracy, 0);
        cli_csv_num(f, rows[r].eval.fgsm_accuracy, 0);
        for (int32_t i = 0; i < cfg->num_pgd; i++) cli_csv_num(f, rows[r].eval.robust_accuracy[i], 0);
        cli_csv_num(f, cfg->apgd ? rows[r].eval.apgd_accuracy : NAN, 0);
        cli_csv_num(f, rows[r].train.seconds, 0);
        cli_csv_num(f, rows[r].train.images_per_sec, 0);
        cli_csv_num(f, rows[r].train.epochs_done, 0);
        cli_csv_num(f, rows[r].train.best_epoch, 0);
        cli_csv_num(f, rows[r].eval.flags, 1);
    }
    fclose(f);

    path_in(path, sizeof path, cfg->log_dir, "", "compare", ".md");
    f = cli_log_open(path, 0);
    if (!f) return CLI_EXIT_FAILURE;
    print_table(f, cfg, rows, count);
    fclose(f);
    return CLI_EXIT_OK;
}

int cli_cmd_compare(const cli_config *cfg) {
    sat_context *ctx = NULL;
    sat_dataset *train = NULL, *val = NULL, *test = NULL;
    row rows[CLI_MAX_ACTS];
    int32_t done = 0;
    memset(rows, 0, sizeof rows);
    const double t_start = cli_now();

    if (cfg->log_dir && make_dir(cfg->log_dir)) return CLI_EXIT_FAILURE;
    int rc = cli_context(cfg, &ctx);
    if (rc) return rc;
    rc = cli_load_split(cfg, ctx, SAT_SPLIT_TRAIN, cfg->train_limit, &train);
    if (!rc) rc = cli_load_split(cfg, ctx, SAT_SPLIT_TEST, cfg->test_limit, &test);
    if (!rc) rc = cli_split_val(cfg, train, &val);
    if (rc) goto out;

    const float eps = !isnan(cfg->eps) ? cfg->eps
                      : cfg->format == SAT_DATA_CIFAR10 ? 8.0f / 255.0f : 0.1f;
    for (int32_t a = 0; a < cfg->num_acts; a++) {
        const int32_t act = cfg->acts[a];
        const char *name = sat_activation_name(act);
        char label[64], out_path[4096], log_path[4096];
        snprintf(label, sizeof label, "[%s] ", name);
        if (cfg->log_dir) {
            path_in(out_path, sizeof out_path, cfg->log_dir, "model-", name, ".sat");
            path_in(log_path, sizeof log_path, cfg->log_dir, "train-", name, ".jsonl");
        }
        rows[a].act = act;
        rc = cli_train_model(cfg, ctx, train, val, act, cfg->log_dir ? out_path : NULL,
                             cfg->log_dir ? log_path : NULL, label, &rows[a].train);
        if (rc) goto out;
        if (!cfg->quiet) {
            printf("%sevaluating on %lld test examples...\n", label,
                   (long long)sat_dataset_size(test));
            fflush(stdout);
        }
        rc = cli_evaluate(cfg, rows[a].train.model, test, eps, &rows[a].eval);
        sat_model_destroy(rows[a].train.model);
        rows[a].train.model = NULL;
        if (rc) goto out;
        done = a + 1;
        if (!cfg->quiet) {
            printf("%stest clean %.2f%%", label, 100.0 * rows[a].eval.clean_accuracy);
            for (int32_t i = 0; i < cfg->num_pgd; i++)
                printf(", PGD-%d %.2f%%", (int)cfg->pgd_steps[i],
                       100.0 * rows[a].eval.robust_accuracy[i]);
            printf("\n");
            fflush(stdout);
        }
    }

    {
        char dur[32];
        cli_format_duration(dur, sizeof dur, cli_now() - t_start);
        printf("\n%s-trained %s, %s eps %.4g, %d attack steps, %d epoch%s, %lld training "
               "examples, evaluated on %lld test examples (total time %s)\n\n",
               cfg->method == SAT_TRAIN_STANDARD ? "standard" :
               cfg->method == SAT_TRAIN_FAST ? "Fast-AT" :
               cfg->method == SAT_TRAIN_FREE ? "Free-AT" :
               cfg->method == SAT_TRAIN_TRADES ? "TRADES" : "PGD-AT",
               cfg->spec_file ? cfg->spec_file : cfg->preset,
               cfg->norm == SAT_NORM_L2 ? "L2" : "Linf", (double)eps, (int)cfg->steps,
               (int)cfg->epochs, cfg->epochs == 1 ? "" : "s", (long long)sat_dataset_size(train),
               (long long)sat_dataset_size(test), dur);
    }
    print_table(stdout, cfg, rows, done);
    for (int32_t r = 0; r < done; r++) {
        if (rows[r].eval.flags) {
            printf("\n%s: gradient-masking checks raised:\n", sat_activation_name(rows[r].act));
            cli_print_flags(stdout, rows[r].eval.flags, "  ");
        }
        if (rows[r].train.catastrophic)
            printf("\n%s: catastrophic overfitting at epoch %d (the model of epoch %d was used)\n",
                   sat_activation_name(rows[r].act), (int)rows[r].train.catastrophic_epoch,
                   (int)rows[r].train.best_epoch);
    }
    if (cfg->log_dir) {
        rc = write_logs(cfg, rows, done, eps, sat_dataset_size(test));
        if (!rc)
            printf("\nresults written to %s/compare.{jsonl,csv,md}; plots: "
                   "/usr/bin/python3 examples/plot_logs.py %s\n",
                   cfg->log_dir, cfg->log_dir);
    }
    fflush(stdout);

out:
    for (int32_t r = 0; r < CLI_MAX_ACTS; r++) sat_model_destroy(rows[r].train.model);
    sat_dataset_destroy(test);
    sat_dataset_destroy(val);
    sat_dataset_destroy(train);
    sat_context_destroy(ctx);
    return rc;
}
