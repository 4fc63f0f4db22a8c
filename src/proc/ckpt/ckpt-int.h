/* ckpt-int.h — the image store as krgd's workers use it (ckpt_store.c).
 * Blocking file system work: called in forked workers only, never on the
 * event loop. Errors come back as -errno and one line in msg. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ckpt/ckpt.h"

#define CKPTSVC_STORE_DEFAULT "/var/lib/krg/chkpt"

/* $KRG_CKPT_STORE of krgd, or the default. */
const char *ckptsvc_store(void);
/* Dump pid (owned by uid:gid) into STORE/<appid>/v<next>/ with the
 * description file, everything owned by uid:gid. 0 and the version path
 * in msg, or -errno and why. */
int ckptsvc_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
		       size_t len);
/* Path of STORE/<appid>/v<version> (0: the latest) if caller_uid is root
 * or owns <appid>/. 0 and the path in msg, or -errno and why. */
int ckptsvc_store_find(uint32_t appid, uint32_t version, uid_t caller_uid, char *msg, size_t len);
