/* main.c - the mitmd executable: parses the command line and runs one role.
 * The only file that sees both the master and the worker: `mitmd --worker ID` (started by
 * the master) runs worker_main; everything else is the master's. */
#include <stdio.h>
#include <stdlib.h>

#include "master/cert_cmd.h"
#include "master/master.h"
#include "shared/config.h"
#include "shared/log.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    int status;

    if (config_parse(argc, argv, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd: %s (see mitmd --help)\n", err);
        config_dispose(&cfg);
        return 2;
    }
    switch (cfg.mode) {
    case CONFIG_MODE_HELP:
        config_usage(stdout);
        status = 0;
        break;
    case CONFIG_MODE_VERSION:
        printf("mitmd %s\n", MITMD_VERSION);
        status = 0;
        break;
    case CONFIG_MODE_CERT:
        status = cert_cmd_run(cfg.confdir, cfg.n_cert_names, cfg.cert_names, stdout, stderr);
        break;
    case CONFIG_MODE_WORKER:
        status = worker_main(argc, argv);
        break;
    case CONFIG_MODE_PROXY:
    default:
        log_setup("mitmd", cfg.verbose ? LOG_DEBUG : LOG_INFO);
        status = master_run(&cfg, argc, argv);
        break;
    }
    config_dispose(&cfg);
    return status;
}
