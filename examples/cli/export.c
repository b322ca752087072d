/* export.c - sat-cli export: the model of a model file written as a standard ONNX file, so
 * a model trained or smoothly fine-tuned here goes back to PyTorch, ONNX Runtime or
 * TensorRT. */
#include "cli.h"

#include <stdio.h>

int cli_cmd_export(const cli_config *cfg) {
    sat_context *ctx = NULL;
    sat_model *model = NULL;
    int rc = cli_context(cfg, &ctx);
    if (rc) return rc;
    char what[1100];
    int32_t st = sat_model_load(ctx, cfg->model_file, NULL, &model);
    if (st) {
        snprintf(what, sizeof what, "cannot load model file '%s'", cfg->model_file);
        rc = cli_fail(st, what, sat_last_error());
        /* A model file that cannot be opened or read is bad input, whatever the status. */
        if (rc == CLI_EXIT_USAGE) rc = CLI_EXIT_DATA;
        goto done;
    }
    sat_onnx_export_opts o;
    sat_onnx_export_opts_init(&o, sizeof o);
    if (cfg->opset) o.opset = cfg->opset;
    o.batch_dim = cfg->batch_dim;
    st = sat_model_save_onnx(model, cfg->onnx_file, &o);
    if (st) {
        snprintf(what, sizeof what, "cannot export '%s' to '%s'", cfg->model_file, cfg->onnx_file);
        rc = cli_fail(st, what, sat_model_last_error(model));
        goto done;
    }
    if (!cfg->quiet) {
        char batch[32] = "symbolic batch";
        if (o.batch_dim) snprintf(batch, sizeof batch, "batch %d", o.batch_dim);
        printf("%s: wrote %s (ONNX opset %d, %s) from %s\n", cli_prog, cfg->onnx_file, o.opset, batch,
               cfg->model_file);
    }
done:
    sat_model_destroy(model);
    sat_context_destroy(ctx);
    return rc;
}
