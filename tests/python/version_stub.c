/* A shared library that answers sat_version like a libsat of another major version: the
 * Python package must refuse it (test_package.py). */
#include <stdint.h>

const char *sat_version_string(void);
void sat_version(int32_t *major, int32_t *minor, int32_t *patch);

const char *sat_version_string(void) { return "9.0.0"; }

void sat_version(int32_t *major, int32_t *minor, int32_t *patch) {
    if (major) *major = 9;
    if (minor) *minor = 0;
    if (patch) *patch = 0;
}
