/* submounts.h — mounts under a forwarded path stay the node's own.
 *
 * A file system mounted under /tmp on a node (a cluster file system, or
 * the vcluster's bind of a build tree that lives under /tmp) would be
 * hidden by the view mounted over /tmp. A tmpfs under it (/run/user/UID)
 * is node-local like the path, and forwarded. krg-fsview keeps the others: it
 * opens them before mounting the view and binds them back on top of it
 * after. The kernel must look the mount point up in the view to bind on
 * it; those lookups are answered here (fsv_subs_stat) from the node's
 * own attributes, never forwarded: krgd is waiting for READY then and
 * could not relay them, and a mount point's dentry must stay stable. */
#pragma once
#include <stddef.h>
#include <sys/stat.h>

struct fsv_sub {
	char *rel;                 /* "/ci" for /tmp/ci under /tmp */
	int fd;                    /* O_PATH of the mount's root, -1 once bound */
	struct stat st;            /* its attributes, answered for rel */
};

struct fsv_subs {
	struct fsv_sub *v;
	size_t n;
	struct stat parent;        /* answered for a directory on the way to one */
};

/* The outermost mounts strictly under path (from /proc/self/mountinfo). */
int fsv_subs_find(const char *path, struct fsv_subs *out);
/* rel is a kept mount point or on the way to one: its attributes. */
int fsv_subs_stat(const struct fsv_subs *s, const char *rel, struct stat *st);
/* Bind each back at path + rel (the view is mounted on path and served).
 * Best effort: one that fails stays hidden, with a line on stderr. */
void fsv_subs_bind(const char *path, struct fsv_subs *s);
