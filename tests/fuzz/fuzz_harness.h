/* fuzz_harness.h - the fuzz targets of libsat, shared by the libFuzzer entry points
 * (fuzz_main_libfuzzer.c) and the replay driver that CI runs without libFuzzer (replay.c).
 *
 * Each target feeds arbitrary bytes to one of the library's input parsers and checks the
 * contract of sat.h: the call returns SAT_OK or a negative SAT_E_* status, and a failure
 * leaves a non-empty message. A violation calls sat_fuzz_violation(), which aborts. */
#ifndef SAT_FUZZ_HARNESS_H
#define SAT_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Largest input a target reads; longer inputs are cut (keeps each run fast). */
#define SAT_FUZZ_MAX_INPUT (64 * 1024)
#define SAT_FUZZ_MAX_SPEC 8192

/* (a) sat_model_load_buffer on the bytes as they are and, when they are long enough, on a
 *     copy whose total-size field and trailing CRC32 are recomputed, so mutations reach the
 *     section parsing. */
int sat_fuzz_model_load(const uint8_t *data, size_t size);
/* (b) sat_model_create on the bytes as spec text (cut at SAT_FUZZ_MAX_SPEC), max_batch 2;
 *     a model that builds is run once: forward, input gradient and train backward. */
int sat_fuzz_model_spec(const uint8_t *data, size_t size);
/* (c) the data set readers through files in a temporary directory. Byte 0 selects:
 *     bit 0: gzip the images file, bit 1: gzip the labels file, bit 2: CIFAR-10 instead of
 *     IDX (the rest is test_batch.bin). Bytes 1-2 (little-endian) split the rest into the
 *     images and labels files. Files written plain may still be gzip streams: zlib reads
 *     those, so damaged gzip data is fuzzed too. */
int sat_fuzz_dataset(const uint8_t *data, size_t size);

/* (d) the bytes as a checkpoint file, as they are and resealed as in (a): sat_checkpoint_load
 *     into four trainers ({SGD, Adam} x {Free-AT, PGD}, the spec of the corpus checkpoints)
 *     and sat_optimizer_checkpoint_load into an SGD and an Adam optimizer. A failed load
 *     must leave every value it could write as it was; after a load that worked the
 *     handles train a step and are then reset from a checkpoint saved when they were made. */
int sat_fuzz_checkpoint(const uint8_t *data, size_t size);

/* (e) sat_model_load_onnx_buffer on the bytes (max_batch 2; odd-sized inputs also swap
 *     ReLU for another activation); a model that imports is run once as in (b). */
int sat_fuzz_onnx(const uint8_t *data, size_t size);

/* Recomputes the total-size field (offset 8) and the trailing CRC32 of a libsat file image
 * of `size` >= 20 bytes, in place. */
void sat_fuzz_fix_frame(uint8_t *data, size_t size);

typedef int (*sat_fuzz_target)(const uint8_t *data, size_t size);
/* The target called `name` ("model_load", "model_spec", "dataset", "checkpoint",
 * "onnx"), or NULL. */
sat_fuzz_target sat_fuzz_find_target(const char *name);

/* Prints what broke the contract and aborts (tests only: the library never aborts). */
void sat_fuzz_violation(const char *what, int32_t status, const char *message);

#endif
