/* eval.c - `sat-cli eval`: clean, FGSM and PGD-k accuracy of a model file, optional APGD
 * and AutoAttack, and the gradient-masking checks explained in words. */
#include "cli.h"

#include <math.h>
#include <string.h>

int cli_evaluate(const cli_config *cfg, sat_model *model, sat_dataset *ds, float eps,
                 sat_eval_result *res) {
    sat_eval_opts eo;
    sat_eval_opts_init(&eo, sizeof eo);
    eo.norm = cfg->norm < 0 ? SAT_NORM_LINF : cfg->norm;
    eo.eps = eps;
    eo.step_size = isnan(cfg->step_size) ? 0.0f : cfg->step_size; /* 0: automatic */
    eo.num_steps = cfg->num_pgd;
    for (int32_t i = 0; i < cfg->num_pgd; i++) eo.steps[i] = cfg->pgd_steps[i];
    eo.restarts = cfg->restarts;
    eo.apgd = cfg->apgd;
    eo.apgd_steps = cfg->apgd_steps;
    if (cfg->batch > 0) {
        int64_t mb = sat_model_max_batch(model);
        eo.batch = (int32_t)(cfg->batch < mb ? cfg->batch : mb);
    }
    eo.seed = cfg->seed;
    memset(res, 0, sizeof *res);
    res->struct_size = sizeof *res;
    int32_t st = sat_evaluate(model, &eo, sat_dataset_images(ds), sat_dataset_labels(ds),
                              sat_dataset_size(ds), res);
    if (st) return cli_fail(st, "evaluation failed", sat_model_last_error(model));
    return CLI_EXIT_OK;
}

void cli_print_flags(FILE *f, uint32_t flags, const char *indent) {
    if (!flags) {
        fprintf(f, "%snone raised: gradients are finite and non-zero, robust accuracy has "
                   "flattened over the step counts, and FGSM is not stronger than PGD.\n",
                indent);
        return;
    }
    if (flags & SAT_FLAG_ZERO_GRAD)
        fprintf(f, "%sZERO GRADIENT: some examples have an all-zero input gradient, so a\n"
                   "%s  gradient attack cannot move them (saturated softmax or a flat loss);\n"
                   "%s  their robustness may be an illusion. Try --apgd or the margin loss.\n",
                indent, indent, indent);
    if (flags & SAT_FLAG_NONFINITE_GRAD)
        fprintf(f, "%sNON-FINITE GRADIENT: some input gradients are NaN or Inf; the attack\n"
                   "%s  results on those examples are meaningless.\n",
                indent, indent);
    if (flags & SAT_FLAG_NOT_CONVERGED)
        fprintf(f, "%sNOT CONVERGED: robust accuracy still falls between the two largest step\n"
                   "%s  counts; the true robust accuracy is lower. Add larger k to --pgd-steps\n"
                   "%s  or use --restarts / --apgd.\n",
                indent, indent, indent);
    if (flags & SAT_FLAG_ONE_STEP_STRONGER)
        fprintf(f, "%sONE STEP STRONGER: FGSM finds more adversarial examples than multi-step\n"
                   "%s  PGD, a classic sign of gradient masking (Athalye et al.); do not trust\n"
                   "%s  the PGD numbers.\n",
                indent, indent, indent);
}

static const char *method_name(int32_t m) {
    static const char *const names[] = {"standard", "pgd", "fast", "free", "trades"};
    return m >= 0 && m < 5 ? names[m] : "unknown";
}

int cli_cmd_eval(const cli_config *cfg_in) {
    cli_config cfg = *cfg_in;
    sat_context *ctx = NULL;
    sat_model *model = NULL;
    sat_dataset *test = NULL;
    int rc = cli_context(&cfg, &ctx);
    if (rc) return rc;

    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    /* An ONNX model carries no meta: the attack's defaults below apply. */
    int32_t st = cfg.onnx_file ? sat_model_load_onnx(ctx, cfg.onnx_file, NULL, &model)
                               : sat_model_load(ctx, cfg.model_file, &meta, &model);
    if (cfg.onnx_file) cfg.model_file = cfg.onnx_file;
    if (st) {
        char what[1100];
        snprintf(what, sizeof what, "cannot load %s '%s'", cfg.onnx_file ? "the ONNX model" : "model file",
                 cfg.model_file);
        rc = cli_fail(st, what, sat_last_error());
        /* A model file that cannot be opened or read is bad input, whatever the status. */
        if (rc == CLI_EXIT_USAGE) rc = CLI_EXIT_DATA;
        goto done;
    }
    rc = cli_load_split(&cfg, ctx, SAT_SPLIT_TEST, cfg.test_limit, &test);
    if (rc) goto done;

    int32_t mc, mh, mw, mk, c, h, w, k;
    sat_model_shape(model, &mc, &mh, &mw, &mk);
    sat_dataset_shape(test, &c, &h, &w, &k);
    if (mc != c || mh != h || mw != w || mk < k) {
        fprintf(stderr, "%s: model '%s' takes %dx%dx%d inputs and %d classes, the data in '%s' "
                        "has %dx%dx%d images and %d classes (wrong --data or --format?)\n",
                cli_prog, cfg.model_file, mc, mh, mw, mk, cfg.data_dir, c, h, w, k);
        rc = CLI_EXIT_DATA;
        goto done;
    }

    if (cfg.norm < 0) cfg.norm = meta.norm == SAT_NORM_L2 ? SAT_NORM_L2 : SAT_NORM_LINF;
    float eps = cfg.eps;
    if (isnan(eps)) eps = isfinite(meta.eps) && meta.eps > 0 ? meta.eps : 0.1f;

    sat_model_opts mo;
    sat_model_opts_init(&mo, sizeof mo);
    sat_model_get_opts(model, &mo);
    const char *act = cfg.onnx_file ? "as in the graph" : sat_activation_name(mo.activation);
    const int64_t n = sat_dataset_size(test);
    if (!cfg.quiet) {
        printf("model         %s: activation %s, %lld parameters\n", cfg.model_file,
               act ? act : "?", (long long)sat_model_param_count(model));
        if (!cfg.onnx_file) /* an ONNX file does not say how its model was trained */
            printf("trained with  %s, %s eps %.4g, %d steps, %d epochs\n", method_name(meta.method),
                   meta.norm == SAT_NORM_L2 ? "L2" : "Linf", (double)meta.eps, (int)meta.steps,
                   (int)meta.epochs);
        printf("evaluated on  %lld test examples from %s\n", (long long)n, cfg.data_dir);
        printf("threat model  %s eps %.4g, %d restart%s, step %s\n",
               cfg.norm == SAT_NORM_L2 ? "L2" : "Linf", (double)eps, (int)cfg.restarts,
               cfg.restarts == 1 ? "" : "s", isnan(cfg.step_size) ? "2.5 eps / k" : "as given");
        fflush(stdout);
    }

    /* Evaluation and AutoAttack can take minutes: a bar on a terminal shows how far they are. */
    cli_progress bar;
    cli_progress_init(&bar, cfg.quiet, 0);
    sat_context_set_progress(ctx, cli_progress_report, &bar);

    sat_eval_result res;
    const double t0 = cli_now();
    rc = cli_evaluate(&cfg, model, test, eps, &res);
    cli_progress_clear(&bar);
    if (rc) goto done;
    const double secs = cli_now() - t0;

    printf("\n%-14s %10s\n", "attack", "accuracy");
    printf("%-14s %9.2f%%\n", "clean", 100.0 * res.clean_accuracy);
    if (isfinite(res.fgsm_accuracy)) printf("%-14s %9.2f%%\n", "FGSM", 100.0 * res.fgsm_accuracy);
    for (int32_t i = 0; i < res.num_steps && i < cfg.num_pgd; i++) {
        char name[32];
        snprintf(name, sizeof name, "PGD-%d", (int)cfg.pgd_steps[i]);
        printf("%-14s %9.2f%%\n", name, 100.0 * res.robust_accuracy[i]);
    }
    if (cfg.apgd) printf("%-14s %9.2f%%\n", "APGD-CE/T", 100.0 * res.apgd_accuracy);
    printf("\ngradient-masking checks:\n");
    cli_print_flags(stdout, res.flags, "  ");
    char dur[32];
    cli_format_duration(dur, sizeof dur, secs);
    printf("\nevaluation took %s\n", dur);
    sat_autoattack_result aa;
    if (cfg.autoattack) {
        rc = cli_autoattack(&cfg, model, test, eps, &aa);
        cli_progress_clear(&bar);
        if (rc) goto done;
    }

    if (cfg.log) {
        FILE *f = cli_log_open(cfg.log, 1);
        if (!f) {
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        cli_json j;
        cli_json_begin(&j, f);
        cli_json_str(&j, "model_file", cfg.model_file);
        cli_json_str(&j, "activation", act);
        cli_json_str(&j, "norm", cfg.norm == SAT_NORM_L2 ? "l2" : "linf");
        cli_json_num(&j, "eps", eps);
        cli_json_int(&j, "n", res.n);
        cli_json_num(&j, "clean_acc", res.clean_accuracy);
        cli_json_num(&j, "fgsm_acc", res.fgsm_accuracy);
        cli_json_int_array(&j, "pgd_steps", cfg.pgd_steps, cfg.num_pgd);
        cli_json_num_array(&j, "pgd_acc", res.robust_accuracy, cfg.num_pgd);
        cli_json_num(&j, "apgd_acc", cfg.apgd ? res.apgd_accuracy : NAN);
        cli_json_int(&j, "flags", res.flags);
        cli_json_num(&j, "seconds", secs);
        if (cfg.autoattack) {
            cli_json_num(&j, "aa_robust_acc", aa.robust_accuracy);
            cli_json_num_array(&j, "aa_acc_after", aa.accuracy_after, aa.num_attacks);
            cli_json_int(&j, "aa_square_only", aa.square_only);
            cli_json_int(&j, "aa_flags", aa.flags);
        }
        cli_json_end(&j);
        fclose(f);
    }
    rc = CLI_EXIT_OK;
done:
    sat_dataset_destroy(test);
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    return rc;
}
