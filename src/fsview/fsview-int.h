/* fsview-int.h — the krg-fsview program's parts (main.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "proto/fsview.pb-c.h"

/* The FUSE side on a node that is not the processes' home (client.c):
 * mounts the view over each path in a new mount namespace, then serves.
 * uid/gid: the view's user (the owner of its relay sockets). */
int fsv_client_main(int fd, char **paths, int n, uid_t uid, gid_t gid);
/* The home side (serve.c), already running with the user's credentials. */
int fsv_serve_main(int fd);

/* client.c: one request home, its reply (caller frees), or -errno. */
int fsv_call(Krg__Fsview__Request *q, Krg__Fsview__Reply **out);

/* relay.c: home's bound unix sockets, reached from the view through a
 * relay socket in FSV_RELAY_DIR (a tmpfs of the view's namespace only). */
#define FSV_RELAY_DIR "/run/krg-fsview"
int fsv_relay_setup(uid_t uid, gid_t gid);
/* The relay's path for home's socket file ino of that type; its length. */
size_t fsv_relay_name(uint64_t ino, uint32_t type, char *buf, size_t len);
/* The relay for home's socket file (path home), made and served on first
 * use. -errno: none (the view shows a plain socket file then). */
int fsv_relay_get(const char *home, uint64_t ino, uint32_t type, uid_t uid, gid_t gid);
