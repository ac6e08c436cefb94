/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules: shared declarations of the command implementations.
 */

#ifndef CEF_RULES_TOOL_H
#define CEF_RULES_TOOL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <yaml.h>

#include "cef_decision.h"
#include "cef_plugins.h"
#include "cef_rules.h"
#include "cef_persona.h"


#define CEF_EXIT_OK       0
#define CEF_EXIT_PROBLEM  1
#define CEF_EXIT_USAGE    2


/* main.c */
void cef_tool_usage(void);
cef_rules_t *cef_tool_load(const char *path);
FILE *cef_tool_fopen(const char *path);
/*
 * SEP "strategy S, variant V, bucket B, would have shown 'O' (rule 'R')",
 * or nothing for a rule set without plugins (output as before them).
 */
void cef_tool_print_plugins(const cef_rules_t *rs,
    const cef_decision_slot_t *ds, const char *sep);

/* nginxvars.c: the nginx variables check can verify var.NAMEs against */
typedef struct cef_tool_vars_s  cef_tool_vars_t;
cef_tool_vars_t *cef_tool_vars_create(void);
void cef_tool_vars_free(cef_tool_vars_t *vs);
/* NAME,NAME,... ($ optional) */
int cef_tool_vars_add_list(cef_tool_vars_t *vs, const char *list);
/* the variables an nginx configuration defines; 0, or -1 with err */
int cef_tool_vars_read_conf(cef_tool_vars_t *vs, const char *path, char *err,
    size_t size);
/* 1 if nginx knows the (lower-cased) name: built in, a prefix variable,
   or added to vs (which may be NULL) */
int cef_tool_vars_known(cef_tool_vars_t *vs, const char *name);

/* inputs.c: personas from YAML, JSON and --set */
int cef_tool_persona_yaml(cef_persona_t *p, yaml_document_t *doc,
    yaml_node_t *node, const char *file, char *err, size_t size);
int cef_tool_persona_json(cef_persona_t *p, const char *prefix, json_t *obj,
    char *err, size_t size);
int cef_tool_persona_assign(cef_persona_t *p, const char *assignment,
    char *err, size_t size);
int cef_tool_parse_now(const char *s, int64_t *now);
/*
 * yaml_parser_load() of a file that must hold exactly one document: 0, or
 * -1 with "LINE:COL: message" in err (and nothing to delete).
 */
int cef_tool_yaml_load(yaml_parser_t *parser, yaml_document_t *doc,
    char *err, size_t size);

/* the plugins --plugin loaded (NULL: the built-in ones) */
const cef_plugins_t *cef_tool_plugin_set(void);
/* main.c: var.NAMEs nginx -t would reject, printed to out: 1 if any */
int cef_tool_check_vars_to(const char *path, const cef_rules_t *rs,
    cef_tool_vars_t *vs, int verify, FILE *out);

/* publish.c: publish, promote, rollback (records); history (a store) */
int cef_tool_publish(const char *cmd, int argc, char **argv);
int cef_tool_history(int argc, char **argv);

/* shadow.c: what a shadow candidate would change, from impression logs */
int cef_tool_shadow(int argc, char **argv);

/* cases.c */
int cef_tool_test(int argc, char **argv);

/* explain.c */
int cef_tool_explain(int argc, char **argv);


#endif /* CEF_RULES_TOOL_H */
