/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/plugin: the rule plugin ABI and the engine's host of it.  It
 * includes only lib/core; lib/expr, lib/rules, lib/decision, the glue, the
 * tools and plugins include it.  It never includes anything above it, so a
 * plugin can be built from this folder and lib/core alone.
 *
 * cef_plugins: the engine's side of the plugin ABI (cef_plugin.h):
 * a set of plugins that rule files are compiled against — the built-in
 * ones (rules/plugins/) plus external shared objects.  Plugins never
 * include this header.
 *
 * A set is built at configuration time and read-only afterwards.  nginx
 * keeps one per configuration cycle (cef_plugin directives add to it); the
 * cef-rules tool and tests use the built-in set.
 */

#ifndef CEF_PLUGIN_HOST_H
#define CEF_PLUGIN_HOST_H

#include <stddef.h>

#include "cef_plugin.h"


#define CEF_PLUGINS_MAX  64

typedef struct cef_plugins_s  cef_plugins_t;


/* The built-in plugins: priority, weighted, value, experiment, freqcap,
 * schedule.  Static; never freed. */
const cef_plugins_t *cef_plugins_builtin(void);

/*
 * A new set holding the built-in plugins.
 *
 * @return the set, or NULL when out of memory.
 */
cef_plugins_t *cef_plugins_create(void);

/*
 * Free a set and dlclose() the shared objects it opened.  Rule sets
 * compiled against it must be freed first.  NULL is accepted.
 */
void cef_plugins_free(cef_plugins_t *ps);

/*
 * Add a descriptor.
 *
 * @param[in]  name   the name it must have (the directive's NAME), or NULL
 * @param[out] err    why it was refused
 * @return 0; -1 for a wrong ABI version, a bad or mismatching name, a name
 *         or function name already taken, or a full set.
 */
int cef_plugins_add(cef_plugins_t *ps, const cef_plugin_t *p,
    const char *name, char *err, size_t errlen);

/*
 * dlopen() a shared object, look up CEF_PLUGIN_ENTRY_SYMBOL, call it and
 * add the descriptor (cef_plugins_add()).  The object stays open until
 * cef_plugins_free().
 *
 * @return 0, or -1 with err set (cannot open, missing entry symbol, NULL
 *         descriptor, or any cef_plugins_add() refusal).
 */
int cef_plugins_load(cef_plugins_t *ps, const char *name, const char *path,
    char *err, size_t errlen);

/* The plugin of a name, or NULL. */
const cef_plugin_t *cef_plugins_find(const cef_plugins_t *ps,
    const char *name);

/* The expression function of a name (and its plugin), or NULL. */
const cef_plugin_func_t *cef_plugins_func(const cef_plugins_t *ps,
    const char *name, size_t len);

uint32_t cef_plugins_count(const cef_plugins_t *ps);
const cef_plugin_t *cef_plugins_get(const cef_plugins_t *ps, uint32_t i);


#endif /* CEF_PLUGIN_HOST_H */
