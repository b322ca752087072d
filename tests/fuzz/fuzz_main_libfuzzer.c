/* fuzz_main_libfuzzer.c - libFuzzer entry point of one target, chosen at compile time with
 * -DSAT_FUZZ_TARGET=sat_fuzz_model_load (or sat_fuzz_model_spec, sat_fuzz_dataset). */
#include "fuzz_harness.h"

#ifndef SAT_FUZZ_TARGET
#error "define SAT_FUZZ_TARGET to one of the functions of fuzz_harness.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return SAT_FUZZ_TARGET(data, size); }
