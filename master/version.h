/* version.h - what this executable is: the release (MITMD_VERSION) and the build tag compiled
 * into master/version.c ("local" unless -DMITMD_BUILD_TAG=... at configure time). The tag
 * tells two builds of one release apart: `mitmd --version`, mitmd_build_info{build=...} in
 * /metrics. The mitmd-peer test executable links its own version.c with another tag, so
 * the binary upgrade test (SIGUSR2) can see which build serves. */
#ifndef MITMD_MASTER_VERSION_H
#define MITMD_MASTER_VERSION_H

/* version_build returns the build tag (a static string). */
const char *version_build(void);

#endif
