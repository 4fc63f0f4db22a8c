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

/* $KRG_CKPT_STORE, or the default. */
const char *krg_ckpt_store(void);
/* Highest v<n> in appdir (0: none), or -errno. */
int krg_ckpt_versions(const char *appdir, unsigned *max);
/* Dump pid (owned by uid:gid) into STORE/<appid>/v<next>/ with the
 * description file, everything owned by uid:gid. 0 and the version path
 * in msg, or -errno and why. */
int krg_ckpt_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
			size_t len);
/* Path of STORE/<appid>/v<version> (0: the latest) if caller_uid is root
 * or owns <appid>/. 0 and the path in msg, or -errno and why. */
int krg_ckpt_store_find(uint32_t appid, uint32_t version, uid_t caller_uid, char *msg, size_t len);
