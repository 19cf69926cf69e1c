/* bench_flowfilter.c - prints the cost of one filter evaluation (ns, best of 5 runs of N
 * evaluations, CLOCK_MONOTONIC) for typical expressions against a recorded flow, and of one
 * rules_on_request_head with a 10-rule set. Not a ctest test: timing on a shared machine.
 * Usage: bench_flowfilter [N]   (default 1000000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "worker/flowfilter.h"
#include "worker/rules.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void make_flow(struct flow *f)
{
    struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = htons(54321)};
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(443)};
    static const char *const req[][2] = {
        {"Host", "api.test"},
        {"User-Agent", "mitmd-bench/0.1"},
        {"Accept", "*/*"},
        {"Accept-Encoding", "gzip, deflate, br"},
        {"Authorization", "Bearer abcdefghijklmnop"},
        {"X-Request-Id", "6f1c0b7e-9d0a-4f7e-8a43-3f6f2f1d1a55"},
    };

    inet_pton(AF_INET, "127.0.0.1", &c.sin_addr);
    inet_pton(AF_INET, "10.0.0.2", &s.sin_addr);
    flow_init(f);
    flow_set_client(f, (struct sockaddr *)&c, sizeof(c));
    flow_set_server(f, "api.test", (struct sockaddr *)&s, sizeof(s));
    flow_begin(f);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://api.test/v1/items?id=7&page=2", 37);
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
        flow_add_header(f, FLOW_REQUEST, req[i][0], strlen(req[i][0]), req[i][1],
                        strlen(req[i][1]));
    f->status = 200;
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, "application/json", 16);
    flow_add_header(f, FLOW_RESPONSE, "Content-Length", 14, "1024", 4);
    flow_add_header(f, FLOW_RESPONSE, "Server", 6, "nginx", 5);
}

int main(int argc, char **argv)
{
    static const char *const exprs[] = {
        "~c 500",
        "~d api.test",
        "~d api.test & ~c 500",
        "~u /v1/items",
        "~m POST | ~c 404",
        "~hq \"X-Request-Id: 6f1c\"",
        "~t json",
        "!(~q & ~t \"text/html\") & ~src ^127\\.",
        "~d ^api\\.test$ & ~u \"/v[0-9]+/items\" & !~h \"x-debug\" & ~m GET",
    };
    static const char *const rule_specs[][2] = {
        {"block_list", "/~d ads\\.test/404"},
        {"block_list", ":~u /admin:403"},
        {"map_remote", "|~d legacy|//legacy\\.test/|//api.test/"},
        {"modify_headers", "/~d api.test/X-Env/load"},
        {"modify_headers", "/~m POST/X-Post/1"},
        {"modify_headers", "/~hq Authorization/X-Auth/seen"},
        {"inject_latency", "/~d slow\\.test/100ms~20ms"},
        {"inject_latency", ":~u /v2/:5ms"},
        {"inject_error", "/~d flaky\\.test/503@5"},
        {"inject_fault", "/~d reset\\.test/1/reset"},
    };
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    struct flow *f = malloc(sizeof(*f));
    char err[512];
    volatile unsigned sink = 0;

    if (f == NULL || n <= 0)
        return 1;
    make_flow(f);
    printf("%-72s %8s %6s\n", "expression", "ns/eval", "match");
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
        struct flowfilter *ff = NULL;
        uint64_t best = UINT64_MAX;

        if (flowfilter_compile(exprs[e], &ff, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        for (int run = 0; run < 5; run++) {
            uint64_t t0 = now_ns();

            for (long i = 0; i < n; i++)
                sink += flowfilter_match(ff, f);
            best = now_ns() - t0 < best ? now_ns() - t0 : best;
        }
        printf("%-72s %8.1f %6s\n", exprs[e], (double)best / (double)n,
               flowfilter_match(ff, f) ? "yes" : "no");
        flowfilter_free(ff);
    }
    {
        struct rules *r = rules_new();
        struct rules_verdict v;
        uint64_t rng = 1, best = UINT64_MAX;
        long m = n / 4 > 0 ? n / 4 : 1;

        for (size_t i = 0; r != NULL && i < sizeof(rule_specs) / sizeof(rule_specs[0]); i++) {
            enum rules_kind k = RULES_KIND_COUNT;

            for (int j = 0; j < RULES_KIND_COUNT; j++)
                if (strcmp(rules_kind_name((enum rules_kind)j), rule_specs[i][0]) == 0)
                    k = (enum rules_kind)j;
            if (rules_add(r, k, rule_specs[i][1], err, sizeof(err)) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
        }
        for (int run = 0; r != NULL && run < 5; run++) {
            uint64_t t0 = now_ns();

            for (long i = 0; i < m; i++) {
                rules_on_request_head(r, f, &rng, &v);
                sink += (unsigned)v.n_edits;
            }
            best = now_ns() - t0 < best ? now_ns() - t0 : best;
        }
        printf("%-72s %8.1f %6d\n", "rules_on_request_head, 10 rules (edits applied)",
               (double)best / (double)m, v.n_edits);
        rules_free(r);
    }
    free(f);
    return sink == 0xdeadbeef;
}
