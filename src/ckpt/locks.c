/* locks.c — file locks (flock, POSIX and OFD locks) of the fds (a part of files.c, fd-int.h). */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/fd-int.h"
#include "lib/macro.h"

/* ---- file locks ----
 * fdinfo lists, for an fd, the POSIX locks its process holds on the file
 * and the flock/OFD locks of its open file description. POSIX ones are
 * kept once per process and file, the others once per description (not
 * on dups; ckpt_files_link_app drops them from shared entries). At
 * restart they are taken again, without waiting: one held meanwhile by
 * someone else (the original, still running) fails the restart by name. */

int ckpt_locks_dump(Krg__Ckpt__Files *f, Krg__Ckpt__Fd *e, const struct stat *st, const char *info, struct ckpt_error *err)
{
	bool posix_seen = false;
	for (size_t k = 0; k + 1 < f->n_fds && !posix_seen; k++) {
		const Krg__Ckpt__Fd *g = f->fds[k];
		for (size_t i = 0; i < g->n_locks && !posix_seen; i++)
			posix_seen = g->locks[i]->kind == KRG__CKPT__LOCK__KIND__POSIX && g->has_ino && g->ino == (uint64_t)st->st_ino;
	}
	for (const char *l = strstr(info, "lock:"); l; l = strstr(l + 5, "lock:")) {
		char kind[16], adv[16], rw[16], end[32];
		unsigned long long start = 0;
		int id, owner;
		if (sscanf(l + 5, " %d: %15s %15s %15s %d %*s %llu %31s", &id, kind, adv, rw, &owner, &start, end) != 7)
			continue;
		Krg__Ckpt__Lock__Kind k;
		if (!strcmp(kind, "POSIX"))
			k = KRG__CKPT__LOCK__KIND__POSIX;
		else if (!strcmp(kind, "FLOCK"))
			k = KRG__CKPT__LOCK__KIND__FLOCK;
		else if (!strcmp(kind, "OFDLCK"))
			k = KRG__CKPT__LOCK__KIND__OFD;
		else
			return ckpt_fail(err, EOPNOTSUPP, "process %d fd %d: a %s lock on %s is not supported", f->pid, e->fd, kind, e->path ? e->path : "?");
		if (strcmp(adv, "ADVISORY"))
			return ckpt_fail(err, EOPNOTSUPP, "process %d fd %d: a %s lock on %s is not supported", f->pid, e->fd, adv, e->path ? e->path : "?");
		if (k == KRG__CKPT__LOCK__KIND__POSIX && posix_seen)
			continue;
		Krg__Ckpt__Lock *lk = calloc(1, sizeof(*lk));
		Krg__Ckpt__Lock **nl = realloc(e->locks, (e->n_locks + 1) * sizeof(*nl));
		if (!lk || !nl)
			abort();
		krg__ckpt__lock__init(lk);
		e->locks = nl;
		e->locks[e->n_locks++] = lk;
		lk->kind = k;
		lk->write = !strcmp(rw, "WRITE");
		lk->start = start;
		lk->len = strcmp(end, "EOF") ? strtoull(end, NULL, 10) - start + 1 : 0;
	}
	if (e->n_locks) {
		e->has_ino = true;
		e->ino = (uint64_t)st->st_ino;
	}
	return 0;
}

int ckpt_locks_apply(struct ckpt_tracee *t, const Krg__Ckpt__Fd *fd, bool take, struct ckpt_error *err)
{
	for (size_t i = 0; i < fd->n_locks; i++) {
		const Krg__Ckpt__Lock *lk = fd->locks[i];
		long ret;
		const char *what = lk->kind == KRG__CKPT__LOCK__KIND__FLOCK ? "flock" : lk->kind == KRG__CKPT__LOCK__KIND__OFD ? "OFD lock" : "POSIX lock";
		if (lk->kind == KRG__CKPT__LOCK__KIND__FLOCK) {
			ret = ckpt_syscall(t, err, SYS_flock, fd->fd, take ? (lk->write ? LOCK_EX : LOCK_SH) | LOCK_NB : LOCK_UN, 0, 0, 0, 0);
		} else {
			struct flock fl = { .l_type = !take ? F_UNLCK : lk->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = (off_t)lk->start,
					    .l_len = (off_t)lk->len };
			if (ckpt_poke(t->pid, t->scratch, &fl, sizeof(fl)) < 0)
				return ckpt_fail(err, EIO, "fd %d: passing a lock", fd->fd);
			ret = ckpt_syscall(t, err, SYS_fcntl, fd->fd, lk->kind == KRG__CKPT__LOCK__KIND__OFD ? F_OFD_SETLK : F_SETLK, (long)t->scratch, 0, 0, 0);
		}
		if (ret < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(ret), "fd %d: %s its %s %s on %s%s: %s", fd->fd, take ? "taking" : "releasing", lk->write ? "write" : "read", what,
					 fd->path ? fd->path : "?", ckpt_fd_inj_errno(ret) == EAGAIN || ckpt_fd_inj_errno(ret) == EWOULDBLOCK ? " (someone else holds it)" : "",
					 strerror(ckpt_fd_inj_errno(ret)));
	}
	return 0;
}
