/* store.h — the node's image store, Kerrighed's layout:
 *     STORE/<appid>/v<n>/        STORE = $KRG_CKPT_STORE or /var/lib/krg/chkpt
 * one directory per version, 0700 and owned (with every file) by the
 * process's user. Used by `krg checkpoint/restart` in local mode and by
 * krgd's workers. Blocking file system work: never call it on an event
 * loop. Errors come back as -errno and one line in msg. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ckpt/ckpt.h"

#define KRG_CKPT_STORE_DEFAULT "/var/lib/krg/chkpt"
/* STORE/.tmp/<appid>.<pid>: a version being written by process pid, root's
 * (0700), renamed to STORE/<appid>/v<n> only once complete. */
#define KRG_CKPT_STORE_TMP ".tmp"

/* $KRG_CKPT_STORE, or the default. */
const char *krg_ckpt_store(void);
/* Highest v<n> in appdir (0: none), or -errno. */
int krg_ckpt_versions(const char *appdir, unsigned *max);
/* Dump pid (owned by uid:gid) into STORE/<appid>/v<next>/ with the
 * description file, everything owned by uid:gid; the version appears
 * only once complete. 0 and the version path
 * in msg, or -errno and why. */
int krg_ckpt_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
			size_t len);
/* The `view` file of version directory vdir: the node whose node-local
 * files the application saw when it was dumped (docs/fsview.md,
 * "Restart"). 0 and *node, -ENOENT (none recorded: an image of krg
 * checkpoint --local, or older), or -errno. */
int krg_ckpt_store_view(const char *vdir, uint32_t *node);
/* What a writer killed half-way left (krgd at start): the temporary
 * versions of processes that are gone, and versions holding a part under
 * its temporary name, or nothing. removed(path, bytes of its files) for
 * each. 0, or the first -errno. */
int krg_ckpt_store_clean(void (*removed)(const char *path, uint64_t bytes, void *data), void *data);
/* Path of STORE/<appid>/v<version> (0: the latest) if caller_uid is root
 * or owns <appid>/. 0 and the path in msg, or -errno and why. */
int krg_ckpt_store_find(uint32_t appid, uint32_t version, uid_t caller_uid, char *msg, size_t len);
