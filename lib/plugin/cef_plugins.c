/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cef_plugins.h"


extern const cef_plugin_t  cef_plugin_priority;
extern const cef_plugin_t  cef_plugin_weighted;
extern const cef_plugin_t  cef_plugin_value;
extern const cef_plugin_t  cef_plugin_experiment;
extern const cef_plugin_t  cef_plugin_freqcap;
extern const cef_plugin_t  cef_plugin_schedule;
extern const cef_plugin_t  cef_plugin_bandit;


struct cef_plugins_s {
    uint32_t             n;
    const cef_plugin_t  *p[CEF_PLUGINS_MAX];
    void                *dl[CEF_PLUGINS_MAX];
    cef_plugin_t        *copy[CEF_PLUGINS_MAX];   /* an older ABI's
                                                     descriptor, extended */
};


static cef_plugins_t  cef_builtin = {
    7,
    { &cef_plugin_priority, &cef_plugin_weighted, &cef_plugin_value,
      &cef_plugin_experiment, &cef_plugin_freqcap, &cef_plugin_schedule,
      &cef_plugin_bandit },
    { NULL },
    { NULL }
};


/* The size of the descriptor of each ABI version (index: the version). */
static const size_t  cef_plugin_abi_size[] = {
    0,
    offsetof(cef_plugin_t, experiment),              /* 1 */
    sizeof(cef_plugin_t)                             /* 2 */
};


const cef_plugins_t *
cef_plugins_builtin(void)
{
    return &cef_builtin;
}


cef_plugins_t *
cef_plugins_create(void)
{
    cef_plugins_t  *ps;

    ps = malloc(sizeof(cef_plugins_t));
    if (ps) {
        *ps = cef_builtin;
    }

    return ps;
}


void
cef_plugins_free(cef_plugins_t *ps)
{
    uint32_t  i;

    if (ps == NULL || ps == &cef_builtin) {
        return;
    }

    for (i = 0; i < ps->n; i++) {
        free(ps->copy[i]);
        if (ps->dl[i]) {
            dlclose(ps->dl[i]);
        }
    }

    free(ps);
}


static int
cef_plugin_name_ok(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || *s == '_')) {
        return 0;
    }

    for ( ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
        {
            return 0;
        }
    }

    return 1;
}


const cef_plugin_t *
cef_plugins_find(const cef_plugins_t *ps, const char *name)
{
    uint32_t  i;

    for (i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i]->name, name) == 0) {
            return ps->p[i];
        }
    }

    return NULL;
}


const cef_plugin_func_t *
cef_plugins_func(const cef_plugins_t *ps, const char *name, size_t len)
{
    uint32_t                  i, j;
    const cef_plugin_func_t  *f;

    for (i = 0; i < ps->n; i++) {
        for (j = 0; j < ps->p[i]->nfuncs; j++) {
            f = &ps->p[i]->funcs[j];
            if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
                return f;
            }
        }
    }

    return NULL;
}


uint32_t
cef_plugins_count(const cef_plugins_t *ps)
{
    return ps->n;
}


const cef_plugin_t *
cef_plugins_get(const cef_plugins_t *ps, uint32_t i)
{
    return ps->p[i];
}


static const char  *cef_reserved_funcs[] = {
    "days_since", "hours_since", "len", "lower", "not", "and", "or", "in",
    "contains", "starts_with", "ends_with", "matches", "true", "false",
    "null", NULL
};


int
cef_plugins_add(cef_plugins_t *ps, const cef_plugin_t *p, const char *name,
    char *err, size_t errlen)
{
    uint32_t                  i, j;
    cef_plugin_t             *copy = NULL;
    const cef_plugin_func_t  *f;

    if (p->abi_version < CEF_PLUGIN_ABI_OLDEST
        || p->abi_version > CEF_PLUGIN_ABI_VERSION)
    {
        snprintf(err, errlen, "plugin \"%s\" was built for ABI version %u, "
                 "this module has versions %u to %u", name ? name : "?",
                 p->abi_version, CEF_PLUGIN_ABI_OLDEST,
                 CEF_PLUGIN_ABI_VERSION);
        return -1;
    }

    if (!cef_plugin_name_ok(p->name)) {
        snprintf(err, errlen, "invalid plugin name \"%s\" (lowercase "
                 "letters, digits and '_')", p->name ? p->name : "(null)");
        return -1;
    }

    /* the engine's own per-visitor state (cef_goal ... once) is the
       cookie "cef_goals": no plugin may keep state under that name */

    if (strcmp(p->name, "goals") == 0) {
        snprintf(err, errlen, "the plugin name \"goals\" is reserved (the "
                 "module keeps goal state in the cookie cef_goals)");
        return -1;
    }

    if (name && strcmp(name, p->name) != 0) {
        snprintf(err, errlen, "the plugin is named \"%s\", not \"%s\"",
                 p->name, name);
        return -1;
    }

    if (cef_plugins_find(ps, p->name)) {
        snprintf(err, errlen, "a plugin named \"%s\" is already loaded",
                 p->name);
        return -1;
    }

    if (p->nfuncs && p->funcs == NULL) {
        snprintf(err, errlen, "plugin \"%s\" declares %u functions but no "
                 "table", p->name, p->nfuncs);
        return -1;
    }

    for (i = 0; i < p->nfuncs; i++) {
        f = &p->funcs[i];

        if (!cef_plugin_name_ok(f->name) || f->fn == NULL
            || f->nargs > CEF_PLUGIN_MAX_ARGS)
        {
            snprintf(err, errlen, "plugin \"%s\": invalid function #%u",
                     p->name, i + 1);
            return -1;
        }

        for (j = 0; cef_reserved_funcs[j]; j++) {
            if (strcmp(f->name, cef_reserved_funcs[j]) == 0) {
                snprintf(err, errlen, "plugin \"%s\": function %s() is "
                         "built into the rule language", p->name, f->name);
                return -1;
            }
        }

        if (cef_plugins_func(ps, f->name, strlen(f->name))) {
            snprintf(err, errlen, "plugin \"%s\": a function named %s() is "
                     "already defined", p->name, f->name);
            return -1;
        }
    }

    if (ps->n == CEF_PLUGINS_MAX) {
        snprintf(err, errlen, "too many plugins (at most %d)",
                 CEF_PLUGINS_MAX);
        return -1;
    }

    /* an older descriptor is shorter: the engine reads a copy whose later
       hooks are NULL, never past the end of the plugin's struct */

    if (p->abi_version != CEF_PLUGIN_ABI_VERSION) {
        copy = calloc(1, sizeof(cef_plugin_t));
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        memcpy(copy, p, cef_plugin_abi_size[p->abi_version]);
        p = copy;
    }

    ps->dl[ps->n] = NULL;
    ps->copy[ps->n] = copy;
    ps->p[ps->n++] = p;

    return 0;
}


int
cef_plugins_load(cef_plugins_t *ps, const char *name, const char *path,
    char *err, size_t errlen)
{
    void                *dl;
    struct stat          sb;
    const cef_plugin_t  *p;
    cef_plugin_entry_pt  entry;
    const char          *e;

    if (cef_plugins_find(ps, name)) {
        snprintf(err, errlen, "a plugin named \"%s\" is already loaded",
                 name);
        return -1;
    }

    /* dlopen() of a FIFO would wait for a writer, hanging nginx -t */

    if (strchr(path, '/') && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "cannot load \"%s\": not a regular file", path);
        return -1;
    }

    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        e = dlerror();
        snprintf(err, errlen, "cannot load \"%s\": %s", path,
                 e ? e : "unknown error");
        return -1;
    }

    *(void **) &entry = dlsym(dl, CEF_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        snprintf(err, errlen, "\"%s\" has no %s() entry point", path,
                 CEF_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return -1;
    }

    p = entry();
    if (p == NULL) {
        snprintf(err, errlen, "%s() of \"%s\" returned no plugin",
                 CEF_PLUGIN_ENTRY_SYMBOL, path);
        dlclose(dl);
        return -1;
    }

    if (cef_plugins_add(ps, p, name, err, errlen) != 0) {
        dlclose(dl);
        return -1;
    }

    ps->dl[ps->n - 1] = dl;

    return 0;
}
