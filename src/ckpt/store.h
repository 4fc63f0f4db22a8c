/* store.h — the node's image store, Kerrighed's layout:
 *     STORE/<appid>/v<n>/        STORE = $KRG_CKPT_STORE or /var/lib/krg/chkpt
 * one directory per version, 0700 and owned (with every file) by the
 * process's user. Used by `krg checkpoint/restart` in local mode and by
 * krgd's workers. Blocking file system work: never call it on an event
 * loop. Errors come back as -errno and one line in msg. */
#pragma once
#include <stdbool.h>
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

/* kdfs as the image store (docs/checkpoint.md, "Images on kdfs"):
 *     KDFS/.krg/chkpt/<appid>/v<n>/      KDFS = krgd.conf's kdfs_mount
 * the same layout and modes as the node's store; .krg and .krg/chkpt are
 * root's, 0711 (nobody else lists or makes anything there). krgd names
 * the mount and its node id once at start (NULL or "": off); its workers
 * inherit them. Temporary versions are KDFS/.krg/chkpt/.tmp/<appid>.n<node>.<pid>. */
void krg_ckpt_store_kdfs_set(const char *mount, uint32_t node);
/* Node is down or has left (krgd says so before it forks a dump worker):
 * the temporary versions it left in kdfs are leftovers, which a dump
 * removes as it does its own node's dead writers'. Ids past 255 are
 * never gone. */
void krg_ckpt_store_kdfs_gone(uint32_t node, bool gone);
/* KDFS/.krg/chkpt, or NULL while kdfs is off. No I/O. */
const char *krg_ckpt_store_kdfs(void);
/* path names something in the kdfs store (no I/O). */
bool krg_ckpt_store_in_kdfs(const char *path);
/* Blocking, and never on krgd's event loop (krgd serves that mount):
 * kdfs is mounted (a FUSE file system on the mount point) and the
 * store's directories are root's, directories, writable by root only;
 * with make, made (0711) when absent. 0; -ENODEV when off or not
 * mounted; else -errno and one line in msg (a store that fails the check
 * is never used: someone else could have put images there). */
int krg_ckpt_store_kdfs_ready(bool make, char *msg, size_t len);
/* Highest v<n> in appdir (0: none), or -errno. */
int krg_ckpt_versions(const char *appdir, unsigned *max);
/* Dump pid (owned by uid:gid) into STORE/<appid>/v<next>/ with the
 * description file, everything owned by uid:gid; the version appears
 * only once complete. 0 and the version path
 * in msg, or -errno and why. */
int krg_ckpt_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
			size_t len);
/* The same into the given store (krg_ckpt_store() or the kdfs store). */
int krg_ckpt_store_dump_in(const char *store, pid_t pid, uid_t uid, gid_t gid, uint32_t appid,
			   const struct ckpt_dump_opts *o, char *msg, size_t len);
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
 * or owns <appid>/, and the image was not tampered with: <appid>/ and
 * v<n>/ are real directories (no symlinks), no one but their owner may
 * use them (mode 0700 as written), and v<n>/ is <appid>/'s owner's or
 * root's. 0 and the path in msg, or -errno and why (-EPERM for a
 * refusal, -ENOENT when there is no such image). */
int krg_ckpt_store_find(uint32_t appid, uint32_t version, uid_t caller_uid, char *msg, size_t len);
/* The same in the given store; the kdfs store is checked first
 * (krg_ckpt_store_kdfs_ready). Blocking: not on krgd's loop for kdfs. */
int krg_ckpt_store_find_in(const char *store, uint32_t appid, uint32_t version, uid_t caller_uid, char *msg,
			   size_t len);
