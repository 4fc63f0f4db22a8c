/* dsm_sock.h — a DSM node run on its own thread over stream sockets, one
 * per peer (socketpairs in tests, TCP in bench/dsm). Frames are a 4-byte
 * little-endian length and a krg.dsm.Msg. krgd will carry the same
 * messages on krg_net instead (docs/dsm.md, "Status"). */
#pragma once
#include "dsm/dsm.h"

struct dsm_sock;

/* peers[i]: a connected stream socket to node i (ignored for i == self).
 * The sockets are owned by the result. 0 or -errno. */
int dsm_sock_start(const struct dsm_config *cfg, const int *peers, struct dsm_sock **out);
/* Stops the thread and frees the node (unmapping the segment). */
void dsm_sock_stop(struct dsm_sock *s);
struct dsm_node *dsm_sock_node(struct dsm_sock *s);
/* dsm_node_attach / dsm_node_detach, in step with the loop. */
int dsm_sock_attach(struct dsm_sock *s, int uffd, uint64_t base);
void dsm_sock_detach(struct dsm_sock *s, int view);
/* The node's counters, read on its thread (consistent). */
void dsm_sock_stats(struct dsm_sock *s, struct dsm_stats *out);
