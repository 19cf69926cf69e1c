/* main.c - the mitmd executable: parses the command line and runs one role.
 * The only file that sees both the master and the worker: `mitmd --worker ID` (started by
 * the master) runs worker_main on its argv as given and reads no file here; the master and
 * `mitmd cert` first expand CONFDIR/config.yaml into `--set` arguments (the workers inherit
 * the expanded argv, so they never read the confdir) and the proxy checks everything the
 * workers will load before it starts (master/preflight.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/cert_cmd.h"
#include "master/har_cmd.h"
#include "master/config_yaml.h"
#include "master/master.h"
#include "master/preflight.h"
#include "master/rfile.h"
#include "master/version.h"
#include "shared/config.h"
#include "shared/log.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
    struct config_yaml_args args = {0};
    struct config cfg;
    char err[600];
    int status = 2;

    if (argc == 3 && strcmp(argv[1], "har") == 0) /* `mitmd har FILE` (master/har_cmd.h) */
        return har_cmd_run(argv[2], stdout, stderr);
    if (config_parse(argc, argv, &cfg, err, sizeof(err)) != 0)
        goto out_usage;
    switch (cfg.mode) {
    case CONFIG_MODE_HELP:
        config_usage(stdout);
        status = 0;
        goto out_dispose;
    case CONFIG_MODE_VERSION:
        printf("mitmd %s (build %s)\n", MITMD_VERSION, version_build());
        status = 0;
        goto out_dispose;
    case CONFIG_MODE_WORKER:
        status = worker_main(argc, argv);
        goto out_dispose;
    case CONFIG_MODE_CERT:
    case CONFIG_MODE_PROXY:
    default:
        break;
    }
    /* CONFDIR/config.yaml, then the command line again on top of it. */
    if (config_yaml_expand(cfg.confdir, &cfg, argc, argv, &args, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd: %s\n", err);
        goto out_dispose;
    }
    config_dispose(&cfg);
    if (config_parse(args.argc, args.argv, &cfg, err, sizeof(err)) != 0)
        goto out_usage;
    if (cfg.mode == CONFIG_MODE_CERT) {
        status = cert_cmd_run(cfg.confdir, cfg.n_cert_names, cfg.cert_names, stdout, stderr);
        goto out_dispose;
    }
    log_setup("mitmd", cfg.verbose ? LOG_DEBUG : LOG_INFO);
    if (preflight_check(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd: %s\n", err);
        goto out_dispose;
    }
    if (cfg.rfile != NULL) { /* mitmdump -r: the file first (master/rfile.h) */
        status = rfile_run(&cfg, stdout, stderr);
        /* mitmdump keeps going while server replay has responses left or client replay
         * requests to send (master.c stops then) */
        if (status == 2 || !cfg.server ||
            (!cfg.keepserving && cfg.client_replay == NULL &&
             (cfg.server_replay == NULL || cfg.server_replay_reuse)))
            goto out_dispose;
    } else if (!cfg.server) {
        if (cfg.client_replay != NULL)
            fprintf(stderr, "mitmd: -C with --no-server (-n): mitmd sends replayed requests "
                            "through its own workers, so it runs as a proxy: leave out -n "
                            "(-p 0 takes any free port)\n");
        else
            fprintf(stderr, "mitmd: --no-server (-n) without -r leaves nothing to do\n");
        goto out_dispose;
    }
    status = master_run(&cfg, args.argc, args.argv);
    goto out_dispose;
out_usage:
    fprintf(stderr, "mitmd: %s (see mitmd --help)\n", err);
out_dispose:
    config_dispose(&cfg);
    config_yaml_args_dispose(&args);
    return status;
}
