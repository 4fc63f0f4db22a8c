/* sockans.c — a part of krgd's migration service (migsvc-int.h): what a
 * forwarded socket answered at home, carried with the migrant and served
 * to it (docs/migration.md, "Forwarded fds"). Its own end is a socketpair
 * end of its holder's: left to the kernel, getsockname would be unnamed
 * and SO_PEERCRED would name the holder (root), so a migrant that trusts
 * its peer by uid would be misled. */
#include "proc/migrate/migsvc-int.h"

/* Slot w known: its errno, or 0 if it holds an answer. */
static bool known(const struct mig_sockaddrs *sa, int w)
{
	return sa->known & (1u << w);
}

void mig_sa_to_proxy(Krg__Mig__Proxy *x, const struct mig_sockaddrs *sa, uint32_t *gbuf)
{
	const int16_t *len = sa->len;
	if (known(sa, MIG_SA_NAME) && len[MIG_SA_NAME] > 0)
		x->has_sock_name = true, x->sock_name = (ProtobufCBinaryData){ (size_t)len[MIG_SA_NAME], (uint8_t *)sa->a[MIG_SA_NAME] };
	else if (known(sa, MIG_SA_NAME) && len[MIG_SA_NAME] < 0)
		x->has_sock_name_errno = true, x->sock_name_errno = (uint32_t)-len[MIG_SA_NAME];
	if (known(sa, MIG_SA_PEER) && len[MIG_SA_PEER] > 0)
		x->has_peer_name = true, x->peer_name = (ProtobufCBinaryData){ (size_t)len[MIG_SA_PEER], (uint8_t *)sa->a[MIG_SA_PEER] };
	else if (known(sa, MIG_SA_PEER) && len[MIG_SA_PEER] < 0)
		x->has_peer_name_errno = true, x->peer_name_errno = (uint32_t)-len[MIG_SA_PEER];
	if (known(sa, MIG_SA_CRED) && len[MIG_SA_CRED] == (int)sizeof(struct ucred)) {
		struct ucred c;
		memcpy(&c, sa->a[MIG_SA_CRED], sizeof(c));
		x->has_peer_pid = x->has_peer_uid = x->has_peer_gid = true;
		x->peer_pid = (uint32_t)c.pid, x->peer_uid = c.uid, x->peer_gid = c.gid;
	} else if (known(sa, MIG_SA_CRED) && len[MIG_SA_CRED] < 0) {
		x->has_peer_cred_errno = true, x->peer_cred_errno = (uint32_t)-len[MIG_SA_CRED];
	}
	if (known(sa, MIG_SA_SEC) && len[MIG_SA_SEC] >= 0)
		x->has_peer_sec = true, x->peer_sec = (ProtobufCBinaryData){ (size_t)len[MIG_SA_SEC], (uint8_t *)sa->a[MIG_SA_SEC] };
	else if (known(sa, MIG_SA_SEC))
		x->has_peer_sec_errno = true, x->peer_sec_errno = (uint32_t)-len[MIG_SA_SEC];
	if (known(sa, MIG_SA_GROUPS) && len[MIG_SA_GROUPS] >= 0) {
		x->has_peer_groups_known = x->peer_groups_known = true;
		x->n_peer_groups = (size_t)len[MIG_SA_GROUPS] / sizeof(gid_t);
		memcpy(gbuf, sa->a[MIG_SA_GROUPS], x->n_peer_groups * sizeof(gid_t));
		x->peer_groups = gbuf;
	} else if (known(sa, MIG_SA_GROUPS)) {
		x->has_peer_groups_errno = true, x->peer_groups_errno = (uint32_t)-len[MIG_SA_GROUPS];
	}
}

/* One slot from the wire: bytes (at most max), or an errno (1..4095). */
static void slot_set(struct mig_sockaddrs *sa, int w, bool has, const void *data, size_t n, size_t max, bool has_err,
		     uint32_t err)
{
	if (has && n <= max) {
		memcpy(sa->a[w], data, n);
		sa->len[w] = (int16_t)n;
	} else if (has_err && err && err < 4096) {
		sa->len[w] = (int16_t)-(int)err;
	} else {
		return;
	}
	sa->known |= (uint8_t)(1u << w);
}

void mig_sa_from_proxy(struct mig_sockaddrs *sa, const Krg__Mig__Proxy *x)
{
	memset(sa, 0, sizeof(*sa));
	/* An empty address is no answer (an old source's "unknown"). */
	slot_set(sa, MIG_SA_NAME, x->has_sock_name && x->sock_name.len, x->sock_name.data, x->sock_name.len, MIG_ADDR_MAX,
		 x->has_sock_name_errno, x->sock_name_errno);
	slot_set(sa, MIG_SA_PEER, x->has_peer_name && x->peer_name.len, x->peer_name.data, x->peer_name.len, MIG_ADDR_MAX,
		 x->has_peer_name_errno, x->peer_name_errno);
	struct ucred c = { .pid = (pid_t)x->peer_pid, .uid = x->peer_uid, .gid = x->peer_gid };
	slot_set(sa, MIG_SA_CRED, x->has_peer_pid && x->has_peer_uid && x->has_peer_gid && x->peer_pid <= INT32_MAX, &c,
		 sizeof(c), sizeof(c), x->has_peer_cred_errno, x->peer_cred_errno);
	slot_set(sa, MIG_SA_SEC, x->has_peer_sec, x->peer_sec.data, x->peer_sec.len, MIG_SA_MAX, x->has_peer_sec_errno,
		 x->peer_sec_errno);
	gid_t g[MIG_SA_MAX / sizeof(gid_t)];
	size_t ng = x->n_peer_groups;
	for (size_t i = 0; i < ng && i < ARRAY_SIZE(g); i++)
		g[i] = x->peer_groups[i];
	slot_set(sa, MIG_SA_GROUPS, x->has_peer_groups_known && x->peer_groups_known, g, ng * sizeof(gid_t), sizeof(g),
		 x->has_peer_groups_errno, x->peer_groups_errno);
}

/* SO_DOMAIN (its name's family) or SO_PROTOCOL (the usual protocol of
 * that family and type) of a forwarded socket at home: 4 bytes in out,
 * or 0 (not known: the kernel answers). */
static int sock_family_opt(const struct mig_sockaddrs *sa, int stype, bool protocol, uint8_t *out)
{
	sa_family_t fam;
	if (!known(sa, MIG_SA_NAME) || sa->len[MIG_SA_NAME] < (int)sizeof(fam))
		return 0;
	memcpy(&fam, sa->a[MIG_SA_NAME], sizeof(fam));
	int32_t v = fam;
	if (protocol && fam == AF_UNIX)
		v = 0;
	else if (protocol && (fam == AF_INET || fam == AF_INET6))
		v = stype == SOCK_STREAM ? IPPROTO_TCP : stype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_SCTP;
	else if (protocol)
		return 0;
	memcpy(out, &v, sizeof(v));
	return (int)sizeof(v);
}

/* Its krgd answers a migrant's getsockname/getpeername of a forwarded
 * socket, and its getsockopt of the options that name home's socket or
 * peer (its filter sends them here, ipc/intercept.h). Found by the
 * inode of the caller's fd, so its children, which share it, get them
 * too, and an fd number reused for another socket does not. The peer's
 * credentials, label and groups are never left to the kernel for a
 * forwarded socket: not known (a source that did not send them), the
 * call fails with ENOPROTOOPT, logged by name. */
int mig_sock_hook(void *ctx, pid_t tid, int fd, enum krg_intercept_sock_what what, uint8_t *addr, size_t cap,
		  size_t *got)
{
	struct krg_migsvc *m = ctx;
	char lp[64], link[64];
	snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)tid, fd);
	ssize_t k = readlink(lp, link, sizeof(link) - 1);
	unsigned long ino;
	if (k <= 0 || (link[k] = 0, sscanf(link, "socket:[%lu]", &ino) != 1))
		return 0;
	for (const struct hold *h = m->holds; h; h = h->next)
		for (size_t i = 0; i < h->np; i++) {
			if (!h->stype[i] || h->ino[i] != ino)
				continue;
			const struct mig_sockaddrs *sa = &h->sa[i];
			if (what == KRG_SOCK_DOMAIN || what == KRG_SOCK_PROTOCOL) {
				int n = sock_family_opt(sa, h->stype[i], what == KRG_SOCK_PROTOCOL, addr);
				*got = (size_t)n;
				return n > 0;
			}
			int w = what == KRG_SOCK_NAME ? MIG_SA_NAME : what == KRG_SOCK_PEER ? MIG_SA_PEER
				: what == KRG_SOCK_PEERCRED ? MIG_SA_CRED : what == KRG_SOCK_PEERSEC ? MIG_SA_SEC
												: MIG_SA_GROUPS;
			bool cred = w == MIG_SA_CRED || w == MIG_SA_SEC || w == MIG_SA_GROUPS;
			if (!known(sa, w) && cred) {
				log_warn("migrate: process %u (thread %d): fd %d: getsockopt(%s) of a forwarded socket "
					 "refused (ENOPROTOOPT): its source did not send home's answer",
					 h->id, (int)tid, fd,
					 w == MIG_SA_CRED ? "SO_PEERCRED" : w == MIG_SA_SEC ? "SO_PEERSEC" : "SO_PEERGROUPS");
				return -ENOPROTOOPT;
			}
			if (!known(sa, w))
				return 0;
			int len = sa->len[w];
			if (len < 0)
				return len;
			if ((size_t)len > cap)
				return 0;
			memcpy(addr, sa->a[w], (size_t)len);
			*got = (size_t)len;
			return 1;
		}
	return 0;
}
