/* peerpair.c — a part of the holder (worker.h): the socketpair a forwarded
 * socket becomes in the migrant, made with the credentials home's kernel
 * gave for the real socket's peer (docs/migration.md, "The peer's
 * credentials").
 *
 * The kernel records, for both ends of a socketpair, the process that made
 * it: its thread group (SO_PEERCRED's pid), effective uid and gid, and
 * supplementary groups (SO_PEERGROUPS). Made by the holder as it is, the
 * migrant's end would name root. krgd's seccomp trap answers these calls
 * from what the source sent, but only for a migrant that carries krg's
 * filter (ipc_intercept on); this makes the kernel's own answer right as
 * well, for every migrant and for any call the trap does not see.
 *   - The peer's pid is free here: a child made with that pid (clone3
 *     set_tid) and the peer's ids makes the pair, in the holder's fd table
 *     (CLONE_FILES), and exits. The kernel keeps answering the pid after
 *     the child is gone, as it does for a peer at home that exited.
 *   - It is not (most often: the holder itself has it, the migrant's
 *     parent being its peer), or is not known: the holder's thread takes
 *     the peer's effective ids and groups for the socketpair call only
 *     (raw syscalls: the thread's own credentials, not the process's;
 *     the real and saved uid stay root, so the way back is allowed). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "lib/log.h"
#include "proc/migrate/worker.h"

#ifndef CLONE_FILES
#define CLONE_FILES 0x00000400
#endif

/* The ids the pair is made with: the peer's, or nobody's when the
 * source did not send them (never root's). */
static void ids_of(const struct mig_peer *pe, uid_t *uid, gid_t *gid, size_t *ng, const gid_t **g)
{
	static const gid_t none[1];
	if (pe && pe->known) {
		*uid = pe->uid, *gid = pe->gid, *ng = pe->ngroups, *g = pe->groups;
		return;
	}
	*uid = 65534, *gid = 65534, *ng = 0, *g = none;
}

/* struct clone_args of clone3 (CLONE_ARGS_SIZE_VER2). */
struct peer_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* A child with pid `pid` and the peer's ids makes the pair. 0, or
 * -errno (-EEXIST: the pid is taken here). */
static int pair_in_child(int type, pid_t pid, const struct mig_peer *pe, int sv[2])
{
	uid_t uid;
	gid_t gid;
	size_t ng;
	const gid_t *g;
	ids_of(pe, &uid, &gid, &ng, &g);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	uint64_t tid = (uint64_t)pid;
	/* No exit signal: the holder's SIGCHLD means its migrant. */
	struct peer_clone_args a = { .flags = CLONE_FILES, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };
	long c = syscall(SYS_clone3, &a, sizeof(a));
	if (c == 0) {
		/* Raw syscalls only: this child shares the fd table, not
		 * glibc's idea of its threads. */
		int res[3] = { 0, -1, -1 }, v[2];
		if (syscall(SYS_setgroups, ng, g) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
		    syscall(SYS_setresuid, uid, uid, uid) < 0 ||
		    syscall(SYS_socketpair, AF_UNIX, type | SOCK_CLOEXEC, 0, v) < 0)
			res[0] = -errno;
		else
			res[1] = v[0], res[2] = v[1];
		if (syscall(SYS_write, p[1], res, sizeof(res)) != (long)sizeof(res))
			syscall(SYS_exit, 1);
		syscall(SYS_exit, 0);
	}
	int err = c < 0 ? -errno : 0;
	close(p[1]);
	int res[3] = { err ? err : -EIO, -1, -1 };
	if (c > 0) {
		ssize_t n;
		while ((n = read(p[0], res, sizeof(res))) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(res))
			res[0] = -EIO, res[1] = res[2] = -1;
		int st;
		while (waitpid((pid_t)c, &st, __WALL) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	if (res[0] < 0)
		return res[0];
	sv[0] = res[1], sv[1] = res[2];
	return 0;
}

/* This thread takes the peer's effective ids for the call. */
static int pair_as_peer(int type, const struct mig_peer *pe, int sv[2])
{
	uid_t uid;
	gid_t gid;
	size_t ng;
	const gid_t *g;
	ids_of(pe, &uid, &gid, &ng, &g);
	gid_t mine[MIG_PEER_GROUPS];
	long nmine = syscall(SYS_getgroups, (int)MIG_PEER_GROUPS, mine);
	gid_t egid = getegid();
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (nmine < 0 || geteuid() != 0 || getuid() != 0)
		return nmine < 0 ? -errno : -EPERM;
	int r = 0;
	if (syscall(SYS_setgroups, ng, g) < 0 || syscall(SYS_setresgid, -1, gid, -1) < 0 ||
	    syscall(SYS_setresuid, -1, uid, -1) < 0 || syscall(SYS_socketpair, AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		r = -errno;
	/* Back to root: allowed, the real uid is root's. A holder that
	 * could not would run on as the peer; it must not. */
	if (syscall(SYS_setresuid, -1, 0, -1) < 0 || syscall(SYS_setresgid, -1, egid, -1) < 0 ||
	    syscall(SYS_setgroups, (size_t)nmine, mine) < 0) {
		log_error("migrate: the holder cannot take back its own ids after making a socketpair as uid %u: %s",
			  (unsigned)uid, strerror(errno));
		_exit(1);
	}
	/* A change of euid made us not dumpable (the kernel's rule for
	 * set-id programs); krgd and the tests read our /proc as before. */
	if (dumpable > 0)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return r;
}

int mig_peer_socketpair(int type, const struct mig_peer *pe, int sv[2])
{
	if (pe && pe->known && pe->pid > 1 && pe->pid != getpid()) {
		int r = pair_in_child(type, pe->pid, pe, sv);
		if (r == 0)
			return 0;
		if (r != -EEXIST)
			log_debug("migrate: a socketpair as pid %d: %s; made with the peer's ids only", (int)pe->pid,
				  strerror(-r));
	}
	return pair_as_peer(type, pe, sv);
}
