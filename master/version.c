/* version.c - see version.h. Compiled once into mitmd_master with the configured tag; an
 * executable that lists its own copy (mitmd-peer) overrides it at link time. */
#include "master/version.h"

#ifndef MITMD_BUILD_TAG
#define MITMD_BUILD_TAG "local"
#endif

const char *version_build(void)
{
    return MITMD_BUILD_TAG;
}
