/* config_yaml.c - see config_yaml.h. libyaml's document API: the file is small and read
 * once at start-up. */
#include "master/config_yaml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* config_yaml_add checks the entry and, when `keep`, appends "NAME=VALUE" (or "NAME" when
 * `value` is NULL) to the pending list `pairs`. Entries the command line overrides are
 * checked too, so that a broken config.yaml is reported whatever the command line says. */
static int config_yaml_add(char ***pairs, int *n, const char *path, int line, const char *name,
                           const char *value, bool keep, char *err, size_t errlen)
{
    char msg[400];
    char *spec, **grown;
    int e;

    if (value != NULL) {
        size_t len = strlen(name) + strlen(value) + 2;

        spec = malloc(len);
        if (spec != NULL)
            snprintf(spec, len, "%s=%s", name, value);
    } else {
        spec = strdup(name);
    }
    if (spec == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    e = config_check_set(spec, msg, sizeof(msg));
    if (e != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line, msg);
        free(spec);
        return e;
    }
    if (!keep) {
        free(spec);
        return 0;
    }
    grown = realloc(*pairs, (size_t)(*n + 1) * sizeof(**pairs));
    if (grown == NULL) {
        free(spec);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    *pairs = grown;
    (*pairs)[(*n)++] = spec;
    return 0;
}

/* config_yaml_walk turns the root mapping of `doc` into checked NAME=VALUE specs. */
static int config_yaml_walk(yaml_document_t *doc, const char *path, const struct config *given,
                            char ***pairs, int *n, char *err, size_t errlen)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    int e;

    if (root == NULL)
        return 0; /* empty file */
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%d: expected `name: value` entries", path,
                 (int)root->start_mark.line + 1);
        return -EINVAL;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *name;
        bool keep;
        int line;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "%s:%d: expected an option name", path,
                     k != NULL ? (int)k->start_mark.line + 1 : 0);
            return -EINVAL;
        }
        name = (const char *)k->data.scalar.value;
        line = (int)k->start_mark.line + 1;
        if (strcmp(name, "confdir") == 0) {
            snprintf(err, errlen, "%s:%d: confdir cannot be set in the confdir's own %s "
                     "(use --confdir)", path, line, CONFIG_YAML_FILE);
            return -EINVAL;
        }
        keep = !config_was_given(given, name); /* the command line wins */
        if (v->type == YAML_SCALAR_NODE) {
            const char *val = (const char *)v->data.scalar.value;
            bool null = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                        (val[0] == '\0' || strcmp(val, "~") == 0 || strcmp(val, "null") == 0);

            e = config_yaml_add(pairs, n, path, line, name, null ? NULL : val, keep, err,
                                errlen);
            if (e != 0)
                return e;
            continue;
        }
        if (v->type == YAML_SEQUENCE_NODE) {
            if (!config_is_list(name)) {
                snprintf(err, errlen, "%s:%d: %s takes one value, not a list", path, line, name);
                return -EINVAL;
            }
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(doc, *it);

                if (item == NULL || item->type != YAML_SCALAR_NODE) {
                    snprintf(err, errlen, "%s:%d: %s: expected a list of values", path, line,
                             name);
                    return -EINVAL;
                }
                e = config_yaml_add(pairs, n, path, (int)item->start_mark.line + 1, name,
                                    (const char *)item->data.scalar.value, keep, err, errlen);
                if (e != 0)
                    return e;
            }
            continue;
        }
        snprintf(err, errlen, "%s:%d: %s: expected a value or a list of values", path, line,
                 name);
        return -EINVAL;
    }
    return 0;
}

/* config_yaml_read loads `path` into NAME=VALUE specs. Returns 0 (also when the file does
 * not exist), or -errno with a message. */
static int config_yaml_read(const char *path, const struct config *given, char ***pairs,
                            int *n, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f;
    int e;

    f = fopen(path, "rbe");
    if (f == NULL) {
        e = -errno;
        if (e == -ENOENT)
            return 0;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-e));
        return e;
    }
    if (yaml_parser_initialize(&parser) != 1) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    yaml_parser_set_input_file(&parser, f);
    if (yaml_parser_load(&parser, &doc) != 1) {
        snprintf(err, errlen, "%s:%d: %s", path, (int)parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "YAML syntax error");
        e = -EINVAL;
        goto out_parser;
    }
    e = config_yaml_walk(&doc, path, given, pairs, n, err, errlen);
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(f);
    return e;
}

int config_yaml_expand(const char *confdir, const struct config *given, int argc, char **argv,
                       struct config_yaml_args *out, char *err, size_t errlen)
{
    char path[4200];
    char **pairs = NULL;
    int n = 0, e;

    memset(out, 0, sizeof(*out));
    if (snprintf(path, sizeof(path), "%s/%s", confdir, CONFIG_YAML_FILE) >= (int)sizeof(path)) {
        snprintf(err, errlen, "%s: path too long", confdir);
        return -ENAMETOOLONG;
    }
    e = config_yaml_read(path, given, &pairs, &n, err, errlen);
    if (e != 0)
        goto out_free_pairs;
    out->argv = calloc((size_t)argc + 2 * (size_t)n + 1, sizeof(*out->argv));
    out->owned = calloc(2 * (size_t)n + 1, sizeof(*out->owned));
    if (out->argv == NULL || out->owned == NULL) {
        snprintf(err, errlen, "out of memory");
        e = -ENOMEM;
        goto out_free_pairs;
    }
    out->argv[0] = argv[0];
    for (int i = 0; i < n; i++) {
        out->argv[1 + 2 * i] = out->owned[2 * i] = strdup("--set");
        out->argv[2 + 2 * i] = out->owned[2 * i + 1] = pairs[i];
        pairs[i] = NULL;
        out->n_added += 2;
        if (out->argv[1 + 2 * i] == NULL) {
            snprintf(err, errlen, "out of memory");
            e = -ENOMEM;
            goto out_free_pairs;
        }
    }
    for (int i = 1; i < argc; i++)
        out->argv[out->n_added + i] = argv[i];
    out->argc = argc + out->n_added;
out_free_pairs:
    for (int i = 0; i < n; i++)
        free(pairs[i]);
    free(pairs);
    return e;
}

void config_yaml_args_dispose(struct config_yaml_args *a)
{
    if (a->owned != NULL)
        for (int i = 0; i < a->n_added; i++)
            free(a->owned[i]);
    free(a->owned);
    free(a->argv);
    memset(a, 0, sizeof(*a));
}
