/* main.c - sat-cli: command dispatch, argument parsing, help texts and exit codes. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *cli_prog = "sat-cli";

/* ------------------------------------------------------------------------- */
/* Help                                                                       */
/* ------------------------------------------------------------------------- */

static const char *const help_main[] = {
    "sat-cli - adversarial training of image classifiers with smooth activations\n"
    "\n"
    "Usage: sat-cli COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  train     train one model (PGD-AT by default) and save it to a model file\n"
    "  eval      measure clean and robust accuracy (PGD-k for several k, optional APGD)\n"
    "            of a model file and check for signs of gradient masking\n"
    "  compare   train the same recipe with ReLU and with smooth activations and print\n"
    "            a table: activation | clean %% | PGD-k robust %% | train time\n"
    "  export    write a model file as ONNX, for PyTorch, ONNX Runtime or TensorRT\n"
    "  help      show this text, or `sat-cli help COMMAND` for a command's options\n"
    "  version   print the program and library versions\n"
    "\n"
    "The data set defaults to Fashion-MNIST from Debian's dataset-fashion-mnist package\n"
    "(%s).\n"
    "\n"
    ,
    "Examples:\n"
    "  # 3 quick epochs of PGD adversarial training with SiLU on 10000 images\n"
    "  sat-cli train --model small-cnn --act silu --eps 0.1 --epochs 3 \\\n"
    "          --train-limit 10000 --out fmnist-silu.sat --log train.jsonl\n"
    "  # robust accuracy under PGD-1/10/20/50 on the test split\n"
    "  sat-cli eval --model-file fmnist-silu.sat --test-limit 2000\n"
    "  # ReLU against SiLU and GELU, tables and logs in results/\n"
    "  sat-cli compare --acts relu,silu,gelu --epochs 3 --train-limit 10000 --log-dir results\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  internal or other failure (out of memory, cannot write a file, ...)\n"
    "  2  bad usage: unknown option, bad value, missing argument\n"
    "  3  bad data: missing or damaged data set, model file, model spec or checkpoint\n"
    "  4  numerical failure: NaN or Inf in training or evaluation (lower --lr)\n"
    "  5  interrupted: train stopped by SIGINT or SIGTERM after saving the checkpoint\n"
    "\n"
    "Run `sat-cli COMMAND --help` for the options of a command. See docs/cli.md.\n", NULL};

#define HELP_DATA                                                                          \
    "Data:\n"                                                                              \
    "  --data DIR          data directory (default: %s)\n"                                 \
    "  --format F          idx (MNIST / Fashion-MNIST files, plain or .gz) or cifar10\n"   \
    "                      (data_batch_1..5.bin, test_batch.bin); default idx\n"           \
    "  --test-limit N      use only the first N test examples (default: all)\n"

#define HELP_TRAIN_DATA                                                                    \
    "  --train-limit N     use only N training examples (default: all)\n"                  \
    "  --val N             hold out N training examples for validation and robust early\n" \
    "                      stopping (default 500; 0 disables)\n"                           \
    "  --val-steps K       PGD steps of the per-epoch validation check (default 10)\n"     \
    "  --augment A         none, crop, flip or crop,flip (default none)\n"

#define HELP_MODEL                                                                         \
    "Model:\n"                                                                             \
    "  --model PRESET      mlp, madry-cnn, small-cnn (default), resnet20,\n"               \
    "                      preact-resnet18, wrn-D-K (e.g. wrn-28-10, wrn-16-4),\n"         \
    "                      resnet50, resnext50-32x4d or efficientnet-b0; the input\n"      \
    "                      normalisation (mean/std) is computed from the training data\n"  \
    "  --spec FILE         a model spec file instead of a preset (see include/sat.h)\n"

#define HELP_INIT_ONNX                                                                     \
    "  --init-onnx FILE    fine-tune an ONNX model (torch.onnx.export's output) instead of\n" \
    "                      a preset: its ReLUs become --act (relu keeps them), its weights\n" \
    "                      and input normalisation stay (docs/onnx.md)\n"

#define HELP_ACT                                                                           \
    "  --act NAME          relu, silu, softplus, psoftplus, gelu, gelu-tanh, elu, celu,\n" \
    "                      smoothrelu (default: the original network's for preact-resnet18,\n" \
    "                      wrn-D-K, resnet50, resnext50-32x4d (relu) and efficientnet-b0\n" \
    "                      (silu); silu for the other presets, spec files and --init-onnx)\n" \
    "  --act-param A       the activation's parameter (psoftplus alpha 10, smoothrelu\n"   \
    "                      400, silu beta 1, elu/celu alpha 1)\n"

#define HELP_BACKWARD                                                                      \
    "  --attack-backward ACT[:A]  the paper's ablation: the attacker's input gradients use\n" \
    "                      the derivative of ACT (e.g. psoftplus:10 or softplus:10, the\n"  \
    "                      parametric Softplus) instead of the forward function's own\n"    \
    "  --train-backward ACT[:A]   the same for the optimizer's parameter gradients\n"      \
    "                      (validation and evaluation always use the true derivative)\n"

#define HELP_RECIPE                                                                        \
    "Training:\n"                                                                          \
    "  --method M          standard, pgd (default, Madry et al.), fast (FGSM with random\n" \
    "                      start), free (m replays), trades\n"                             \
    "  --norm N            linf (default) or l2\n"                                         \
    "  --eps E             attack radius in [0,1] pixel units (default 0.1 for idx data,\n" \
    "                      8/255 for cifar10)\n"                                           \
    "  --steps K           attack steps while training (default 10)\n"                     \
    "  --step-size S       attack step (default 2.5 eps / steps; fast 1.25 eps; free eps)\n" \
    "  --trades-beta B     TRADES beta (default 6)\n"                                      \
    "  --free-replays M    Free-AT replays per batch (default 4)\n"                        \
    "  --epochs N          passes over the training data (default 10)\n"                   \
    "  --batch N           batch size (default 128)\n"                                     \
    "  --activation-checkpointing  keep fewer activations and compute them again in the\n" \
    "                      backward: the same results in less memory, about one more\n"   \
    "                      forward pass per backward (docs/design.md)\n"                   \
    "  --optimizer O       sgd (default, momentum), adam or adamw\n"                       \
    "  --lr LR             peak learning rate (default 0.05 for sgd, 0.001 for adam/adamw)\n" \
    "  --momentum M        SGD momentum (default 0.9)\n"                                   \
    "  --wd W              weight decay (default 5e-4)\n"                                  \
    "  --schedule S        constant, step (x0.1 at 50%% and 75%%), cosine (default) or\n"   \
    "                      onecycle\n"                                                     \
    "  --warmup E          epochs of linear learning-rate warm-up (default 0)\n"

#define HELP_RUNTIME                                                                       \
    "Runtime:\n"                                                                           \
    "  --threads N         worker threads (default 1; more threads help only when the\n"  \
    "                      cores are otherwise idle: see docs/cli.md)\n"                 \
    "  --seed S            seed of initialisation, shuffling and attacks (default 0)\n"    \
    "  --quiet             print only the final result and errors\n"                       \
    "  -h, --help          this text\n"

static const char *const help_train[] = {
    "Usage: sat-cli train [OPTIONS]\n"
    "\n"
    "Trains one classifier adversarially and saves it. After every epoch the model is\n"
    "checked on a held-out validation split (clean, FGSM and PGD accuracy); the best model\n"
    "by PGD accuracy (clean accuracy for --method standard) is written to --out, so robust\n"
    "overfitting late in training does not cost the result. With --method fast or free,\n"
    "catastrophic overfitting (PGD accuracy collapsing to below 30%% of its best while FGSM\n"
    "accuracy stays high) is detected, reported and ends the run.\n"
    "\n", HELP_DATA HELP_TRAIN_DATA "\n" HELP_MODEL HELP_INIT_ONNX HELP_ACT HELP_BACKWARD "\n", HELP_RECIPE
    "\n",
    "Output:\n"
    "  --out FILE          model file for the best model (default model.sat); written\n"
    "                      atomically, an existing file is replaced whole or not at all\n"
    "  --checkpoint FILE   checkpoint of the last epoch (model, optimizer, RNG), saved\n"
    "                      after every epoch\n"
    "  --resume            continue from --checkpoint if it exists\n"
    "  --log FILE          per-epoch metrics as JSON lines (epoch, train_loss,\n"
    "                      train_adv_acc, val_clean_acc, val_fgsm_acc, val_pgd_acc, lr,\n"
    "                      images_per_sec, seconds, best, catastrophic_overfitting)\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes --checkpoint and exits\n"
    "with code 5; --resume continues exactly there. A second signal stops at once (the\n"
    "files on disk stay whole).\n"
    "\n" HELP_RUNTIME,
    "\n"
    "Examples:\n"
    "  sat-cli train --epochs 3 --train-limit 10000 --out quick.sat\n"
    "  sat-cli train --model madry-cnn --act gelu --eps 0.1 --steps 40 --step-size 0.01 \\\n"
    "          --epochs 20 --out madry-gelu.sat --checkpoint madry-gelu.ckpt --log madry.jsonl\n"
    "  sat-cli train --method fast --eps 0.1 --schedule onecycle --epochs 5 --out fast.sat\n"
    "  sat-cli train --data cifar-10-batches-bin --format cifar10 --model resnet20 \\\n"
    "          --augment crop,flip --eps 0.0314 --steps 7 --out cifar.sat\n", NULL};

static const char *const help_eval[] = {
    "Usage: sat-cli eval (--model-file FILE | --onnx FILE) [OPTIONS]\n"
    "\n"
    "Measures clean accuracy, FGSM accuracy and robust accuracy under PGD-k for each k of\n"
    "--pgd-steps on the test split, and explains the gradient-masking checks: robust\n"
    "accuracy must stop falling as k grows, and FGSM must not beat multi-step PGD.\n"
    "\n"
    "  --model-file FILE   the model file to evaluate\n"
    "  --onnx FILE         or an ONNX model (torch.onnx.export's output, docs/onnx.md)\n"
    "\n", HELP_DATA
    "\n",
    "Attack:\n"
    "  --eps E             radius (default: the eps the model was trained for)\n"
    "  --norm N            linf (default: the model's) or l2\n"
    "  --pgd-steps LIST    PGD step counts, comma separated (default 1,10,20,50)\n"
    "  --step-size S       PGD step (default 2.5 eps / k for each k)\n"
    "  --restarts R        random restarts per PGD attack, worst case kept (default 1)\n"
    "  --apgd              also run APGD-CE and targeted APGD-DLR (AutoAttack's schedule)\n"
    "  --apgd-steps K      APGD iterations (default 100)\n"
    "  --autoattack        also run AutoAttack (Croce & Hein): APGD-CE, APGD-T, FAB-T and\n"
    "                      Square on the examples still robust, with the gradient-masking\n"
    "                      checks and whether black-box Square finds what gradients missed\n"
    "  --aa-version V      standard (default), plus (more restarts and attacks) or rand\n"
    "                      (for randomised models); implies --autoattack\n"
    "  --batch N           evaluation batch (default: the model's)\n"
    "  --log FILE          append the result as one JSON line\n"
    "\n" HELP_RUNTIME,
    "\n"
    "Examples:\n"
    "  sat-cli eval --model-file quick.sat\n"
    "  sat-cli eval --model-file quick.sat --pgd-steps 10,50,100 --restarts 3 --apgd\n"
    "  sat-cli eval --model-file quick.sat --test-limit 1000 --autoattack\n"
    "  sat-cli eval --onnx resnet20.onnx --data cifar-10-batches-bin --format cifar10\n", NULL};

static const char *const help_export[] = {
    "Usage: sat-cli export --model-file FILE --onnx OUT [OPTIONS]\n"
    "\n"
    "Writes the model of a model file (sat-cli train's --out) as a standard ONNX file:\n"
    "input 'input' [batch, C, H, W] with pixels in [0,1] (the model's normalisation is in the\n"
    "graph), output 'logits' [batch, classes], batch norm with its running statistics, the\n"
    "activation as standard ops (docs/onnx.md). PyTorch, ONNX Runtime and TensorRT read it;\n"
    "`sat-cli eval --onnx OUT` reads it back. An existing OUT is replaced whole or kept.\n"
    "\n"
    "  --model-file FILE   the model file to export\n"
    "  --onnx OUT          the ONNX file to write\n"
    "  --opset N           the opset the file declares, 13 (default) to 17\n"
    "  --batch-dim N       a fixed batch size for the input and the logits (default 0: a\n"
    "                      symbolic batch dimension)\n"
    "  --quiet             print nothing on success\n"
    "\n"
    "Examples:\n"
    "  sat-cli export --model-file fmnist-silu.sat --onnx fmnist-silu.onnx\n"
    "  sat-cli train --init-onnx relu.onnx --act silu --out smooth.sat\n"
    "  sat-cli export --model-file smooth.sat --onnx smooth.onnx --batch-dim 1\n", NULL};

static const char *const help_compare[] = {
    "Usage: sat-cli compare [OPTIONS]\n"
    "\n"
    "Trains the same recipe (same data, model, attack and optimizer) once per activation\n"
    "of --acts and seed of --seeds, evaluates each best model on the test split and prints\n"
    "a table activation | clean %% | PGD-k robust %% for each k | train time. This is the\n"
    "experiment of Smooth Adversarial Training (Xie et al.), who report better robustness\n"
    "at the same clean accuracy with smooth activations.\n"
    "\n"
    "  --acts LIST         activations to compare, comma separated (default relu,silu)\n"
    "  --seeds LIST        seeds, comma separated (default: --seed): every activation is\n"
    "                      trained with every seed; the table gives mean +- standard\n"
    "                      deviation and each activation's paired difference against the\n"
    "                      first with a 95%% confidence interval (Student t)\n"
    "  --jobs N            trainings run at once, each in its own process (default 1)\n"
    "  --pgd-steps LIST    evaluation step counts (default 1,10,20)\n"
    "  --restarts R        evaluation restarts (default 1)\n"
    "  --apgd              also evaluate with APGD\n"
    "  --log-dir DIR       write compare.jsonl, compare.csv, and per run (ACT-seedS)\n"
    "                      train-ACT-seedS.jsonl, model-ACT-seedS.sat and run-ACT-seedS.json\n"
    "                      there; the same command again resumes, reusing finished runs;\n"
    "                      examples/plot_logs.py DIR makes plots\n"
    "\n", HELP_DATA HELP_TRAIN_DATA "\n" HELP_MODEL "  --act-param A       parameter of the activations\n"
    HELP_BACKWARD
    "\n", HELP_RECIPE "\n", HELP_RUNTIME
    "\n"
    "Examples:\n"
    "  sat-cli compare --train-limit 10000 --epochs 3 --test-limit 2000 --log-dir results\n"
    "  sat-cli compare --acts relu,softplus,silu,gelu,elu,smoothrelu --model madry-cnn \\\n"
    "          --epochs 20 --steps 40 --step-size 0.01 --log-dir full\n"
    "  /usr/bin/python3 examples/plot_logs.py results\n", NULL};

/* ------------------------------------------------------------------------- */
/* Helpers shared by the commands                                             */
/* ------------------------------------------------------------------------- */

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_exit_code(int32_t status) {
    switch (status) {
    case SAT_OK: return CLI_EXIT_OK;
    case SAT_E_INVALID_ARG:
    case SAT_E_UNSUPPORTED: return CLI_EXIT_USAGE;
    case SAT_E_IO:
    case SAT_E_FORMAT:
    case SAT_E_VERSION:
    case SAT_E_SHAPE: return CLI_EXIT_DATA;
    case SAT_E_NUMERIC: return CLI_EXIT_NUMERIC;
    default: return CLI_EXIT_FAILURE;
    }
}

int cli_fail(int32_t status, const char *what, const char *detail) {
    if (detail && *detail)
        fprintf(stderr, "%s: %s: %s (%s)\n", cli_prog, what, detail, sat_status_string(status));
    else
        fprintf(stderr, "%s: %s: %s\n", cli_prog, what, sat_status_string(status));
    if (status == SAT_E_NUMERIC)
        fprintf(stderr, "%s: training diverged; try a lower --lr or a warm-up (--warmup 1)\n",
                cli_prog);
    return cli_exit_code(status);
}

/* ------------------------------------------------------------------------- */
/* Argument parsing                                                           */
/* ------------------------------------------------------------------------- */

#define CMD_TRAIN 1u
#define CMD_EVAL 2u
#define CMD_COMPARE 4u
#define CMD_TC (CMD_TRAIN | CMD_COMPARE)
#define CMD_ALL (CMD_TRAIN | CMD_EVAL | CMD_COMPARE)
#define CMD_EXPORT 8u

enum opt_id {
    O_DATA, O_FORMAT, O_TRAIN_LIMIT, O_TEST_LIMIT, O_VAL, O_VAL_STEPS, O_AUGMENT,
    O_MODEL, O_SPEC, O_ACT, O_ACT_PARAM, O_METHOD, O_NORM, O_EPS, O_STEPS, O_STEP_SIZE,
    O_TRADES_BETA, O_FREE_REPLAYS, O_EPOCHS, O_BATCH, O_OPTIMIZER, O_LR, O_MOMENTUM, O_WD,
    O_SCHEDULE, O_WARMUP, O_THREADS, O_SEED, O_OUT, O_CHECKPOINT, O_RESUME, O_LOG, O_QUIET,
    O_MODEL_FILE, O_ONNX, O_INIT_ONNX, O_PGD_STEPS, O_RESTARTS, O_APGD, O_APGD_STEPS, O_AUTOATTACK, O_AA_VERSION, O_ACTS, O_LOG_DIR,
    O_HELP, O_ATTACK_BACKWARD, O_TRAIN_BACKWARD, O_SEEDS, O_JOBS, O_OPSET, O_BATCH_DIM,
    O_ACTIVATION_CHECKPOINTING
};

typedef struct opt_def {
    const char *name;
    int id;
    int has_arg;
    unsigned cmds;
} opt_def;

static const opt_def opts[] = {
    {"data", O_DATA, 1, CMD_ALL},
    {"format", O_FORMAT, 1, CMD_ALL},
    {"train-limit", O_TRAIN_LIMIT, 1, CMD_TC},
    {"test-limit", O_TEST_LIMIT, 1, CMD_ALL},
    {"val", O_VAL, 1, CMD_TC},
    {"val-steps", O_VAL_STEPS, 1, CMD_TC},
    {"augment", O_AUGMENT, 1, CMD_TC},
    {"model", O_MODEL, 1, CMD_TC},
    {"spec", O_SPEC, 1, CMD_TC},
    {"act", O_ACT, 1, CMD_TRAIN},
    {"act-param", O_ACT_PARAM, 1, CMD_TC},
    {"method", O_METHOD, 1, CMD_TC},
    {"norm", O_NORM, 1, CMD_ALL},
    {"eps", O_EPS, 1, CMD_ALL},
    {"steps", O_STEPS, 1, CMD_TC},
    {"step-size", O_STEP_SIZE, 1, CMD_ALL},
    {"trades-beta", O_TRADES_BETA, 1, CMD_TC},
    {"free-replays", O_FREE_REPLAYS, 1, CMD_TC},
    {"epochs", O_EPOCHS, 1, CMD_TC},
    {"batch", O_BATCH, 1, CMD_ALL},
    {"optimizer", O_OPTIMIZER, 1, CMD_TC},
    {"lr", O_LR, 1, CMD_TC},
    {"momentum", O_MOMENTUM, 1, CMD_TC},
    {"wd", O_WD, 1, CMD_TC},
    {"schedule", O_SCHEDULE, 1, CMD_TC},
    {"warmup", O_WARMUP, 1, CMD_TC},
    {"threads", O_THREADS, 1, CMD_ALL},
    {"seed", O_SEED, 1, CMD_ALL},
    {"out", O_OUT, 1, CMD_TRAIN},
    {"checkpoint", O_CHECKPOINT, 1, CMD_TRAIN},
    {"resume", O_RESUME, 0, CMD_TRAIN},
    {"log", O_LOG, 1, CMD_TRAIN | CMD_EVAL},
    {"quiet", O_QUIET, 0, CMD_ALL | CMD_EXPORT},
    {"model-file", O_MODEL_FILE, 1, CMD_EVAL | CMD_EXPORT},
    {"onnx", O_ONNX, 1, CMD_EVAL | CMD_EXPORT},
    {"opset", O_OPSET, 1, CMD_EXPORT},
    {"batch-dim", O_BATCH_DIM, 1, CMD_EXPORT},
    {"init-onnx", O_INIT_ONNX, 1, CMD_TRAIN},
    {"pgd-steps", O_PGD_STEPS, 1, CMD_EVAL | CMD_COMPARE},
    {"restarts", O_RESTARTS, 1, CMD_EVAL | CMD_COMPARE},
    {"apgd", O_APGD, 0, CMD_EVAL | CMD_COMPARE},
    {"apgd-steps", O_APGD_STEPS, 1, CMD_EVAL | CMD_COMPARE},
    {"autoattack", O_AUTOATTACK, 0, CMD_EVAL},
    {"aa-version", O_AA_VERSION, 1, CMD_EVAL},
    {"acts", O_ACTS, 1, CMD_COMPARE},
    {"log-dir", O_LOG_DIR, 1, CMD_COMPARE},
    {"help", O_HELP, 0, CMD_ALL | CMD_EXPORT},
    {"attack-backward", O_ATTACK_BACKWARD, 1, CMD_TC},
    {"train-backward", O_TRAIN_BACKWARD, 1, CMD_TC},
    {"seeds", O_SEEDS, 1, CMD_COMPARE},
    {"jobs", O_JOBS, 1, CMD_COMPARE},
    {"activation-checkpointing", O_ACTIVATION_CHECKPOINTING, 0, CMD_TC},
};

typedef struct name_value {
    const char *name;
    int32_t value;
} name_value;

static const name_value aa_versions[] = {
    {"standard", SAT_AA_STANDARD}, {"plus", SAT_AA_PLUS}, {"rand", SAT_AA_RAND}, {0, 0}};
static const name_value formats[] = {{"idx", SAT_DATA_IDX}, {"cifar10", SAT_DATA_CIFAR10}, {0, 0}};
static const name_value methods[] = {{"standard", SAT_TRAIN_STANDARD}, {"pgd", SAT_TRAIN_PGD},
                                     {"fast", SAT_TRAIN_FAST},         {"free", SAT_TRAIN_FREE},
                                     {"trades", SAT_TRAIN_TRADES},     {0, 0}};
static const name_value norms[] = {{"linf", SAT_NORM_LINF}, {"l2", SAT_NORM_L2}, {0, 0}};
static const name_value optimizers[] = {
    {"sgd", SAT_OPT_SGD}, {"adam", SAT_OPT_ADAM}, {"adamw", SAT_OPT_ADAMW}, {0, 0}};
static const name_value schedules[] = {{"constant", SAT_SCHED_CONSTANT}, {"step", SAT_SCHED_STEP},
                                       {"cosine", SAT_SCHED_COSINE},
                                       {"onecycle", SAT_SCHED_ONECYCLE}, {0, 0}};
static const name_value augments[] = {{"none", SAT_AUG_NONE},
                                      {"crop", SAT_AUG_CROP},
                                      {"flip", SAT_AUG_FLIP},
                                      {"crop,flip", SAT_AUG_CROP | SAT_AUG_FLIP},
                                      {"flip,crop", SAT_AUG_CROP | SAT_AUG_FLIP},
                                      {0, 0}};

static const char *cmd_name;

static void print_help(FILE *f, const char *const *pieces) {
    for (; *pieces; pieces++) fprintf(f, *pieces, sat_default_data_dir());
}

static int usage_error(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "%s %s: ", cli_prog, cmd_name);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry '%s %s --help'.\n", cli_prog, cmd_name);
    return CLI_EXIT_USAGE;
}

static int parse_choice(const char *opt, const char *arg, const name_value *table, int32_t *out) {
    for (const name_value *t = table; t->name; t++)
        if (strcasecmp(arg, t->name) == 0) {
            *out = t->value;
            return 0;
        }
    char known[256] = "";
    for (const name_value *t = table; t->name; t++) {
        if (strchr(t->name, ',') && t != table && strchr(t[-1].name, ',')) continue;
        strncat(known, known[0] ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, t->name, sizeof known - strlen(known) - 1);
    }
    fprintf(stderr, "%s %s: --%s: unknown value '%s' (known: %s)\n", cli_prog, cmd_name, opt, arg,
            known);
    return CLI_EXIT_USAGE;
}

static int parse_i64(const char *opt, const char *arg, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        fprintf(stderr, "%s %s: --%s needs a whole number from %lld to %lld, got '%s'\n", cli_prog,
                cmd_name, opt, (long long)lo, (long long)hi, arg);
        return CLI_EXIT_USAGE;
    }
    *out = (int64_t)v;
    return 0;
}

static int parse_i32(const char *opt, const char *arg, int32_t lo, int32_t hi, int32_t *out) {
    int64_t v;
    int rc = parse_i64(opt, arg, lo, hi, &v);
    if (!rc) *out = (int32_t)v;
    return rc;
}

static int parse_f(const char *opt, const char *arg, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s %s: --%s needs a number from %g to %g, got '%s'\n", cli_prog, cmd_name,
                opt, lo, hi, arg);
        return CLI_EXIT_USAGE;
    }
    *out = (float)v;
    return 0;
}

/* A comma-separated list of --opt: item(c, token, i) takes the i-th entry; *count ends as
 * the number of entries, at most max. Returns 0 or an exit code. */
static int parse_list(const char *opt, const char *arg, int32_t max, int32_t *count,
                      cli_config *c, int (*item)(cli_config *c, const char *tok, int32_t i)) {
    char buf[1024];
    if (strlen(arg) >= sizeof buf) return usage_error("--%s: list too long: %s", opt, arg);
    strcpy(buf, arg);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*count == max) {
            char what[96];
            snprintf(what, sizeof what, "%s: at most %d entries", opt, (int)max);
            return usage_error("--%s, got '%s'", what, arg);
        }
        int rc = item(c, tok, *count);
        if (rc) return rc;
        ++*count;
    }
    if (*count == 0) return usage_error("--%s: empty list '%s'", opt, arg);
    return 0;
}

static int steps_item(cli_config *c, const char *tok, int32_t i) {
    return parse_i32("pgd-steps", tok, 1, 100000, &c->pgd_steps[i]);
}

static int parse_act(const char *opt, const char *arg, int32_t *out) {
    if (sat_activation_from_name(arg, out) == SAT_OK) return 0;
    fprintf(stderr,
            "%s %s: --%s: unknown activation '%s' (known: relu, silu, softplus, psoftplus, gelu, "
            "gelu-tanh, elu, celu, smoothrelu)\n",
            cli_prog, cmd_name, opt, arg);
    return CLI_EXIT_USAGE;
}

static int acts_item(cli_config *c, const char *tok, int32_t i) {
    int rc = parse_act("acts", tok, &c->acts[i]);
    if (rc) return rc;
    for (int32_t j = 0; j < i; j++)
        if (c->acts[j] == c->acts[i]) return usage_error("--acts: '%s' is listed twice%s", tok, "");
    return 0;
}

/* ACT[:A] of --attack-backward / --train-backward; softplus with a parameter is the
 * parametric Softplus. */
static int parse_backward(const char *opt, const char *arg, int32_t *act, float *param) {
    char name[64];
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, arg, len);
    name[len] = 0;
    int rc = parse_act(opt, name, act);
    if (rc) return rc;
    *param = NAN;
    if (!colon) return 0;
    if (*act == SAT_ACT_SOFTPLUS) *act = SAT_ACT_PSOFTPLUS;
    if (*act != SAT_ACT_PSOFTPLUS && *act != SAT_ACT_SILU && *act != SAT_ACT_ELU &&
        *act != SAT_ACT_CELU && *act != SAT_ACT_SMOOTHRELU)
        return usage_error("--%s: '%s' has no parameter (ACT:A is for softplus, psoftplus, "
                           "silu, elu, celu and smoothrelu)", opt, name);
    return parse_f(opt, colon + 1, 1e-6, 1e6, param);
}

static int seeds_item(cli_config *c, const char *tok, int32_t i) {
    int64_t s;
    int rc = parse_i64("seeds", tok, 0, INT64_MAX, &s);
    if (rc) return rc;
    for (int32_t j = 0; j < i; j++)
        if (c->seeds[j] == (uint64_t)s)
            return usage_error("--seeds: seed %s is listed twice%s", tok, "");
    c->seeds[i] = (uint64_t)s;
    return 0;
}

static void defaults(cli_config *c, const char *command) {
    memset(c, 0, sizeof *c);
    c->command = command;
    c->data_dir = sat_default_data_dir();
    c->format = SAT_DATA_IDX;
    c->val = 500;
    c->augment = SAT_AUG_NONE;
    c->preset = "small-cnn";
    c->act = SAT_ACT_DEFAULT; /* the model's own: see HELP_ACT */
    c->act_param = NAN;
    c->attack_backward = SAT_ACT_SAME;
    c->attack_backward_param = NAN;
    c->train_backward = SAT_ACT_SAME;
    c->train_backward_param = NAN;
    c->jobs = 1;
    c->method = SAT_TRAIN_PGD;
    c->norm = -1;
    c->eps = NAN;
    c->steps = 10;
    c->step_size = NAN;
    c->trades_beta = 6.0f;
    c->free_replays = 4;
    c->epochs = 10;
    c->batch = 0;
    c->optimizer = SAT_OPT_SGD;
    c->lr = NAN;
    c->momentum = 0.9f;
    c->wd = 5e-4f;
    c->schedule = SAT_SCHED_COSINE;
    c->warmup = 0;
    /* One thread by default: BLIS's threads wait for each other by spinning, so on a
     * machine that is busy with other work, more threads can be many times slower. */
    c->threads = 1;
    c->val_steps = 10;
    c->restarts = 1;
    c->apgd_steps = 100;
    if (strcmp(command, "compare") == 0) {
        c->num_pgd = 3;
        c->pgd_steps[0] = 1;
        c->pgd_steps[1] = 10;
        c->pgd_steps[2] = 20;
    } else {
        c->num_pgd = 4;
        c->pgd_steps[0] = 1;
        c->pgd_steps[1] = 10;
        c->pgd_steps[2] = 20;
        c->pgd_steps[3] = 50;
    }
    c->num_acts = 2;
    c->acts[0] = SAT_ACT_RELU;
    c->acts[1] = SAT_ACT_SILU;
    if (strcmp(command, "train") == 0) c->out = "model.sat";
}

static int apply(cli_config *c, int id, const char *name, const char *arg) {
    int32_t v32;
    switch (id) {
    case O_DATA: c->data_dir = arg; return 0;
    case O_FORMAT: return parse_choice(name, arg, formats, &c->format);
    case O_TRAIN_LIMIT: return parse_i64(name, arg, 1, INT64_MAX, &c->train_limit);
    case O_TEST_LIMIT: return parse_i64(name, arg, 1, INT64_MAX, &c->test_limit);
    case O_VAL: return parse_i64(name, arg, 0, INT64_MAX, &c->val);
    case O_VAL_STEPS: return parse_i32(name, arg, 1, 100000, &c->val_steps);
    case O_AUGMENT: {
        int rc = parse_choice(name, arg, augments, &v32);
        if (!rc) c->augment = (uint32_t)v32;
        return rc;
    }
    case O_MODEL: {
        /* The library knows its presets (and wide ResNets' names); any shape they all take
         * tells a known name from an unknown one here, the data's shape is checked later. */
        char *spec = NULL;
        if (sat_preset_spec(arg, 3, 224, 224, 10, NULL, NULL, &spec) != SAT_OK)
            return usage_error("--model: %s (or --spec FILE)%s", sat_last_error(), "");
        sat_free(spec);
        c->preset = arg;
        return 0;
    }
    case O_SPEC: c->spec_file = arg; return 0;
    case O_ACT: return parse_act(name, arg, &c->act);
    case O_ACT_PARAM: return parse_f(name, arg, 1e-6, 1e6, &c->act_param);
    case O_METHOD: return parse_choice(name, arg, methods, &c->method);
    case O_NORM: return parse_choice(name, arg, norms, &c->norm);
    case O_EPS: return parse_f(name, arg, 0.0, 1000.0, &c->eps);
    case O_STEPS: return parse_i32(name, arg, 1, 100000, &c->steps);
    case O_STEP_SIZE: return parse_f(name, arg, 1e-9, 1000.0, &c->step_size);
    case O_TRADES_BETA: return parse_f(name, arg, 0.0, 1000.0, &c->trades_beta);
    case O_FREE_REPLAYS: return parse_i32(name, arg, 1, 1000, &c->free_replays);
    case O_EPOCHS: return parse_i32(name, arg, 1, 100000, &c->epochs);
    case O_BATCH: return parse_i64(name, arg, 1, 65536, &c->batch);
    case O_OPTIMIZER: return parse_choice(name, arg, optimizers, &c->optimizer);
    case O_LR: return parse_f(name, arg, 1e-12, 100.0, &c->lr);
    case O_MOMENTUM: return parse_f(name, arg, 0.0, 0.9999, &c->momentum);
    case O_WD: return parse_f(name, arg, 0.0, 1.0, &c->wd);
    case O_SCHEDULE: return parse_choice(name, arg, schedules, &c->schedule);
    case O_WARMUP: return parse_f(name, arg, 0.0, 100000.0, &c->warmup);
    case O_THREADS: return parse_i32(name, arg, 1, 256, &c->threads);
    case O_SEED: {
        int64_t s;
        int rc = parse_i64(name, arg, 0, INT64_MAX, &s);
        if (!rc) c->seed = (uint64_t)s;
        return rc;
    }
    case O_OUT: c->out = arg; return 0;
    case O_CHECKPOINT: c->checkpoint = arg; return 0;
    case O_RESUME: c->resume = 1; return 0;
    case O_LOG: c->log = arg; return 0;
    case O_QUIET: c->quiet = 1; return 0;
    case O_ACTIVATION_CHECKPOINTING: c->activation_checkpointing = 1; return 0;
    case O_MODEL_FILE: c->model_file = arg; return 0;
    case O_ONNX: c->onnx_file = arg; return 0;
    case O_INIT_ONNX: c->init_onnx = arg; return 0;
    case O_OPSET: return parse_i32(name, arg, 1, 1000, &c->opset);
    case O_BATCH_DIM: return parse_i32(name, arg, 0, INT32_MAX, &c->batch_dim);
    case O_PGD_STEPS:
        return parse_list(name, arg, SAT_EVAL_MAX_STEPS, &c->num_pgd, c, steps_item);
    case O_RESTARTS: return parse_i32(name, arg, 1, 1000, &c->restarts);
    case O_APGD: c->apgd = 1; return 0;
    case O_APGD_STEPS: return parse_i32(name, arg, 1, 100000, &c->apgd_steps);
    case O_AUTOATTACK: c->autoattack = 1; return 0;
    case O_AA_VERSION: c->autoattack = 1; return parse_choice(name, arg, aa_versions, &c->aa_version);
    case O_ACTS: return parse_list(name, arg, CLI_MAX_ACTS, &c->num_acts, c, acts_item);
    case O_LOG_DIR: c->log_dir = arg; return 0;
    case O_ATTACK_BACKWARD:
        return parse_backward(name, arg, &c->attack_backward, &c->attack_backward_param);
    case O_TRAIN_BACKWARD:
        return parse_backward(name, arg, &c->train_backward, &c->train_backward_param);
    case O_SEEDS: return parse_list(name, arg, CLI_MAX_SEEDS, &c->num_seeds, c, seeds_item);
    case O_JOBS: return parse_i32(name, arg, 1, 256, &c->jobs);
    default: return CLI_EXIT_FAILURE;
    }
}

/* Parses argv[first..argc) for command `cmd`. Returns -1 when --help was asked for, else an
 * exit code (0 when everything parsed). */
static int parse(int argc, char **argv, int first, unsigned cmd, cli_config *c) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) return -1;
        if (strncmp(a, "--", 2) != 0 || a[2] == 0)
            return usage_error("unexpected argument '%s' (options start with --)%s", a, "");
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) return usage_error("unknown option '%s'%s", a, "");
        memcpy(name, a + 2, len);
        name[len] = 0;
        const opt_def *d = NULL;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strcmp(opts[k].name, name) == 0) d = &opts[k];
        if (!d) return usage_error("unknown option '--%s'%s", name, "");
        if (!(d->cmds & cmd)) {
            if (cmd == CMD_EVAL && d->id == O_MODEL)
                return usage_error("--model is for train and compare; eval takes --model-file "
                                   "FILE%s%s", "", "");
            if (cmd == CMD_COMPARE && d->id == O_ACT)
                return usage_error("compare takes a list: --acts relu,silu,...%s%s", "", "");
            return usage_error("option '--%s' does not apply to this command%s", name, "");
        }
        if (d->id == O_HELP) return -1;
        const char *arg = NULL;
        if (d->has_arg) {
            if (eq)
                arg = eq + 1;
            else if (i + 1 < argc)
                arg = argv[++i];
            else
                return usage_error("option '--%s' needs a value%s", name, "");
        } else if (eq) {
            return usage_error("option '--%s' takes no value%s", name, "");
        }
        int rc = apply(c, d->id, name, arg);
        if (rc) return rc;
    }
    return 0;
}

static int check(cli_config *c, unsigned cmd) {
    if (cmd == CMD_EVAL && !c->model_file == !c->onnx_file)
        return usage_error("one of --model-file FILE and --onnx FILE is required%s%s", "", "");
    if (cmd == CMD_EXPORT && (!c->model_file || !c->onnx_file))
        return usage_error("export needs --model-file FILE and --onnx OUT%s%s", "", "");
    if (c->init_onnx && c->spec_file)
        return usage_error("--init-onnx and --spec both give the model: choose one%s%s", "", "");
    if (c->resume && !c->checkpoint)
        return usage_error("--resume needs --checkpoint FILE%s%s", "", "");
    if (!isnan(c->eps) && c->eps > 1.0f && c->norm != SAT_NORM_L2)
        return usage_error("--eps is in [0,1] pixel units for linf (e.g. 0.1 or 0.0314), got "
                           "a value above 1%s%s", "", "");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr, help_main);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        const char *topic = argc > 2 ? argv[2] : NULL;
        if (!topic) print_help(stdout, help_main);
        else if (strcmp(topic, "train") == 0) print_help(stdout, help_train);
        else if (strcmp(topic, "eval") == 0) print_help(stdout, help_eval);
        else if (strcmp(topic, "compare") == 0) print_help(stdout, help_compare);
        else if (strcmp(topic, "export") == 0) print_help(stdout, help_export);
        else {
            fprintf(stderr, "%s: no help for '%s' (commands: train, eval, compare, export)\n", cli_prog,
                    topic);
            return CLI_EXIT_USAGE;
        }
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sat-cli %s, built against libsat %s, running %s\n", SAT_VERSION_STRING,
               SAT_VERSION_STRING, sat_build_info());
        return CLI_EXIT_OK;
    }
    unsigned mask;
    const char *const *help;
    if (strcmp(cmd, "train") == 0) {
        mask = CMD_TRAIN;
        help = help_train;
    } else if (strcmp(cmd, "eval") == 0) {
        mask = CMD_EVAL;
        help = help_eval;
    } else if (strcmp(cmd, "compare") == 0) {
        mask = CMD_COMPARE;
        help = help_compare;
    } else if (strcmp(cmd, "export") == 0) {
        mask = CMD_EXPORT;
        help = help_export;
    } else {
        fprintf(stderr, "%s: unknown command '%s' (commands: train, eval, compare, export, help)\n"
                        "Try '%s --help'.\n",
                cli_prog, cmd, cli_prog);
        return CLI_EXIT_USAGE;
    }
    cmd_name = cmd;
    cli_config cfg;
    defaults(&cfg, cmd);
    int rc = parse(argc, argv, 2, mask, &cfg);
    if (rc < 0) {
        print_help(stdout, help);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    rc = check(&cfg, mask);
    if (rc) return rc;
    if (mask == CMD_TRAIN) return cli_cmd_train(&cfg);
    if (mask == CMD_EVAL) return cli_cmd_eval(&cfg);
    if (mask == CMD_EXPORT) return cli_cmd_export(&cfg);
    return cli_cmd_compare(&cfg);
}
