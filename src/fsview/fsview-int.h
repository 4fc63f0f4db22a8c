/* fsview-int.h — the two modes of the krg-fsview program (main.c). */
#pragma once

/* The FUSE side on a node that is not the processes' home (client.c):
 * mounts the view over each path in a new mount namespace, then serves. */
int fsv_client_main(int fd, char **paths, int n);
/* The home side (serve.c), already running with the user's credentials. */
int fsv_serve_main(int fd);
