/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync: can the nginx workers use what a load wrote?
 *
 * nginx workers map the store read-only but must also write the current
 * generation's lock.mdb (LMDB's reader table).  A store written by root
 * with umask 022 is readable but not writable for them, and a worker that
 * cannot open a new generation keeps the old one: stale offers, and
 * nothing in cef-sync's output said so.  After a load, this checks the
 * path the workers open against the user and groups nginx runs them as
 * (--nginx-user, else the `user` directive of /etc/nginx/nginx.conf, else
 * nginx's default nobody) and prints the exact fix.  Mode bits only: an
 * ACL that grants more is not seen (the warning then errs on the loud
 * side).
 */

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cef_store.h"
#include "cef_sync.h"


#define CEF_SYNC_NGINX_CONF  "/etc/nginx/nginx.conf"
#define CEF_SYNC_GROUPS_MAX  64


typedef struct {
    char   user[64];
    char   group[64];
    uid_t  uid;
    gid_t  gids[CEF_SYNC_GROUPS_MAX];
    int    ngids;
} cef_sync_worker_t;


/*
 * The `user NAME [GROUP];` directive at the top level of nginx.conf.
 * 0 found, -1 not there (or no readable file).
 */

static int
cef_sync_conf_user(const char *path, char *user, size_t ulen, char *group,
    size_t glen)
{
    int    depth = 0, c, found = -1, ntok = 0;
    FILE  *f;
    char   tok[3][64];
    size_t n = 0;

    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }

    tok[0][0] = '\0';

    while ((c = fgetc(f)) != EOF && found != 0) {

        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n') { /* comment */ }
            c = ' ';
        }

        if (c == '{' || c == '}' || c == ';' || c == ' ' || c == '\t'
            || c == '\n' || c == '\r')
        {
            if (n > 0 && ntok < 3) {
                tok[ntok++][n] = '\0';
            }
            n = 0;

            if (c == ';' && depth == 0 && ntok >= 2
                && strcmp(tok[0], "user") == 0)
            {
                snprintf(user, ulen, "%s", tok[1]);
                snprintf(group, glen, "%s", ntok == 3 ? tok[2] : "");
                found = 0;
            }

            if (c == '{') {
                depth++;
            } else if (c == '}' && depth > 0) {
                depth--;
            }

            if (c == '{' || c == '}' || c == ';') {
                ntok = 0;
            }

            continue;
        }

        if (ntok < 3 && n < sizeof(tok[0]) - 1) {
            tok[ntok][n++] = (char) c;
        }
    }

    fclose(f);
    return found;
}


/* The worker's uid and groups, as nginx sets them (initgroups). */

static int
cef_sync_worker(cef_sync_t *s, cef_sync_worker_t *w)
{
    struct group   *gr;
    struct passwd  *pw;
    gid_t           gid;

    w->group[0] = '\0';

    if (s->nginx_user) {
        snprintf(w->user, sizeof(w->user), "%s", s->nginx_user);

    } else if (cef_sync_conf_user(CEF_SYNC_NGINX_CONF, w->user,
                                  sizeof(w->user), w->group,
                                  sizeof(w->group)) != 0)
    {
        if (access(CEF_SYNC_NGINX_CONF, F_OK) != 0) {
            return -1;          /* no nginx here: nothing to check */
        }
        snprintf(w->user, sizeof(w->user), "nobody");
    }

    pw = getpwnam(w->user);
    if (pw == NULL) {
        fprintf(stderr, "cef-sync: warning: nginx user \"%s\" does not "
                "exist here: cannot check that nginx can read the store\n",
                w->user);
        return -1;
    }

    w->uid = pw->pw_uid;
    gid = pw->pw_gid;

    if (w->group[0]) {
        gr = getgrnam(w->group);
        if (gr != NULL) {
            gid = gr->gr_gid;
        }
    } else if (!s->nginx_user) {
        /* nginx: "If group is omitted, a group whose name equals that of
         * user is used" */
        gr = getgrnam(w->user);
        if (gr != NULL) {
            gid = gr->gr_gid;
        }
    }

    w->ngids = CEF_SYNC_GROUPS_MAX;
    if (getgrouplist(w->user, gid, w->gids, &w->ngids) < 0) {
        w->ngids = CEF_SYNC_GROUPS_MAX;
    }

    return 0;
}


/* R_OK|W_OK|X_OK by mode bits, as the kernel would grant them to w. */

static int
cef_sync_allowed(const cef_sync_worker_t *w, const struct stat *st, int want)
{
    int  i, bits;

    if (w->uid == 0) {
        return 1;
    }

    if (st->st_uid == w->uid) {
        bits = (st->st_mode >> 6) & 7;

    } else {
        bits = st->st_mode & 7;

        for (i = 0; i < w->ngids; i++) {
            if (w->gids[i] == st->st_gid) {
                bits = (st->st_mode >> 3) & 7;
                break;
            }
        }
    }

    return (bits & want) == want;
}


/*
 * Check PATH and every directory above it; print what the workers lack.
 * Returns 1 when something is missing.
 */

static int
cef_sync_check_path(cef_sync_t *s, const cef_sync_worker_t *w,
    const char *path, int want, const char *what)
{
    char         dir[PATH_MAX], *slash;
    struct stat  st;

    if (stat(path, &st) != 0) {
        return 0;
    }

    if (!cef_sync_allowed(w, &st, want)) {
        fprintf(stderr, "cef-sync: warning: nginx workers (user %s) cannot "
                "%s \"%s\" (mode %04o, uid %lu, gid %lu): they keep serving "
                "the previous generation, or generic pages\n"
                "cef-sync: fix: load with --group G, G a group user %s is "
                "in (e.g. cef-sync load --group %s --store %s ...); or once:"
                " chgrp -R %s %s && chmod -R g+rwX %s && chmod g+s %s\n",
                w->user, what, path, (unsigned) (st.st_mode & 07777),
                (unsigned long) st.st_uid, (unsigned long) st.st_gid,
                w->user, w->group[0] ? w->group : w->user, s->store,
                w->group[0] ? w->group : w->user, s->store, s->store,
                s->store);
        return 1;
    }

    if (realpath(path, dir) == NULL) {
        return 0;
    }

    while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
        *slash = '\0';

        if (stat(dir, &st) == 0 && !cef_sync_allowed(w, &st, X_OK)) {
            fprintf(stderr, "cef-sync: warning: nginx workers (user %s) "
                    "cannot enter \"%s\" (mode %04o) on the way to the "
                    "store\ncef-sync: fix: chmod o+x %s (or give it to a "
                    "group of user %s with g+x)\n", w->user, dir,
                    (unsigned) (st.st_mode & 07777), dir, w->user);
            return 1;
        }
    }

    return 0;
}


void
cef_sync_check_access(cef_sync_t *s)
{
    char               gen[PATH_MAX], file[PATH_MAX + 16];
    uint64_t           number;
    cef_sync_worker_t  w;

    if (cef_sync_worker(s, &w) != 0 || w.uid == geteuid()) {
        return;
    }

    if (cef_store_current(s->store, gen, sizeof(gen), &number) != 0) {
        return;
    }

    if (cef_sync_check_path(s, &w, gen, X_OK, "enter")) {
        return;
    }

    snprintf(file, sizeof(file), "%s/data.mdb", gen);
    if (cef_sync_check_path(s, &w, file, R_OK, "read")) {
        return;
    }

    snprintf(file, sizeof(file), "%s/lock.mdb", gen);
    cef_sync_check_path(s, &w, file, R_OK|W_OK, "read and write");
}
