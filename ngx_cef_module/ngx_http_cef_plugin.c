/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_plugin NAME PATH;  (http)
 *
 * Loads an external rule plugin (lib/plugin/cef_plugin.h) from a shared object at
 * configuration time: dlopen(), one entry symbol (cef_plugin_entry), an
 * ABI version check and a name check.  Any failure fails the
 * configuration (nginx -t).  The plugins join the built-in ones in this
 * configuration's plugin set, which every later cef_rules compiles
 * against; the set and its shared objects are released with the
 * configuration (after its rule sets: pool cleanups run last-in,
 * first-out).  Workers inherit the loaded objects through fork().
 */


#include "ngx_http_cef_module.h"

#include "cef_plugins.h"


static void ngx_http_cef_plugins_cleanup(void *data);


/* The plugin set of this configuration, made on first use. */
cef_plugins_t *
ngx_http_cef_plugins(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, NGX_HTTP_CEF);

    if (cmcf->plugins) {
        return cmcf->plugins;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cmcf->plugins = cef_plugins_create();
    if (cmcf->plugins == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_cef_plugins_cleanup;
    cln->data = cmcf->plugins;

    return cmcf->plugins;
}


char *
ngx_http_cef_plugin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t      *value, path;
    cef_plugins_t  *ps;
    char            err[512];

    value = cf->args->elts;
    path = value[2];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ps = ngx_http_cef_plugins(cf);
    if (ps == NULL) {
        return NGX_CONF_ERROR;
    }

    /* value[1] and path are NUL-terminated by the conf parser and
     * ngx_conf_full_name() */

    if (cef_plugins_load(ps, (const char *) value[1].data,
                         (const char *) path.data, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cef_plugin: %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_cef_plugins_cleanup(void *data)
{
    cef_plugins_free(data);
}
