/* autoattack.c - `sat-cli eval --autoattack`: AutoAttack's sequence on the test split, the
 * robust accuracy after each attack, and its checks explained in words. */
#include "cli.h"

#include <string.h>

const char *cli_aa_attack_name(int32_t attack) {
    static const char *const names[] = {"APGD-CE", "APGD-T", "FAB-T", "Square", "APGD-DLR", "FAB"};
    return attack >= 0 && attack < 6 ? names[attack] : "?";
}

static void print_flags(uint32_t flags, const sat_autoattack_result *r) {
    printf("\nAutoAttack checks:\n");
    if (!flags) {
        printf("  none raised: gradients are finite and non-zero, the later attacks found almost\n"
               "  nothing the first ones missed, FGSM found nothing, and black-box Square found\n"
               "  %lld example%s the gradient attacks missed.\n",
               (long long)r->square_only, r->square_only == 1 ? "" : "s");
        return;
    }
    const uint32_t shared = flags & ~(SAT_FLAG_NOT_CONVERGED | SAT_FLAG_SQUARE_STRONGER);
    if (shared) cli_print_flags(stdout, shared, "  ");
    if (flags & SAT_FLAG_NOT_CONVERGED)
        printf("  NOT CONVERGED: the attacks after the first two still broke more than 1%% of the\n"
               "  examples; the first attacks alone would have overstated robustness.\n");
    if (flags & SAT_FLAG_SQUARE_STRONGER)
        printf("  SQUARE STRONGER: the black-box Square attack broke %lld examples that every\n"
               "  gradient attack missed: the gradients mislead, robustness is overstated\n"
               "  (gradient masking; use an adaptive attack before trusting these numbers).\n",
               (long long)r->square_only);
}

int cli_autoattack(const cli_config *cfg, sat_model *model, sat_dataset *ds, float eps,
                   sat_autoattack_result *res) {
    sat_autoattack_opts o;
    sat_autoattack_opts_init(&o, sizeof o);
    o.version = cfg->aa_version;
    o.norm = cfg->norm < 0 ? SAT_NORM_LINF : cfg->norm;
    o.eps = eps;
    o.seed = cfg->seed;
    memset(res, 0, sizeof *res);
    res->struct_size = sizeof *res;
    const double t0 = cli_now();
    int32_t st = sat_autoattack(model, &o, sat_dataset_images(ds), sat_dataset_labels(ds), sat_dataset_size(ds),
                                NULL, NULL, res);
    if (st) return cli_fail(st, "AutoAttack failed", sat_model_last_error(model));
    char dur[32];
    cli_format_duration(dur, sizeof dur, cli_now() - t0);
    static const char *const versions[] = {"standard", "plus", "rand"};
    printf("\nAutoAttack (%s), each attack on the examples still robust:\n", versions[o.version]);
    printf("%-14s %10s\n", "after", "accuracy");
    printf("%-14s %9.2f%%\n", "clean", 100.0 * res->clean_accuracy);
    for (int32_t i = 0; i < res->num_attacks; i++)
        printf("%-14s %9.2f%%\n", cli_aa_attack_name(res->attacks[i]), 100.0 * res->accuracy_after[i]);
    printf("%-14s %9.2f%%\n", "robust (AA)", 100.0 * res->robust_accuracy);
    print_flags(res->flags, res);
    printf("\nAutoAttack took %s\n", dur);
    return CLI_EXIT_OK;
}
