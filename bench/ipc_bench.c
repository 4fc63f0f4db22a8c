/* ipc_bench.c — the timing helper of bench/ipc (docs/ipc.md, "Cost across
 * nodes"). Unmodified System V calls: run outside krg it measures the
 * node's own IPC, under `krg run` the cluster's. The script runs it on the
 * nodes of a vcluster and prints the ratios.
 *
 *   krg-bench-ipc pair N          msgsnd/msgrcv and semop ping-pong with a
 *                                 forked child (private objects), and an
 *                                 uncontended semop: one process tree;
 *   krg-bench-ipc serve KEY N     the echo side of a ping-pong on the queue
 *                                 and the semaphore set of KEY (created);
 *   krg-bench-ipc ping KEY N      the timing side (waits for KEY's objects);
 *   krg-bench-ipc floor N         `pair N` under the least a seccomp user
 *                                 notification interception can cost: a
 *                                 listener (another process, one thread,
 *                                 like krgd's loop) answers every System V
 *                                 call with CONTINUE, so the call then runs
 *                                 natively: the mechanism's floor;
 *   krg-bench-ipc tcp-serve PORT N / tcp-ping HOST PORT N
 *                                 the same ping-pong on raw TCP (64 bytes,
 *                                 TCP_NODELAY): the baseline between nodes.
 *
 * Every timing side prints medians in microseconds on one line:
 *   msg_rt_us X sem_rt_us Y [semop_us Z]      (tcp: tcp_rt_us X)
 * A round trip is ping -> pong -> ping: two message or two semop calls on
 * each side. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 50
#define PAYLOAD 64

struct msg {
	long mtype;
	char text[PAYLOAD];
};

static void die(const char *what)
{
	fprintf(stderr, "krg-bench-ipc: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return (double)v[n / 2] / 1000.0;
}

static void sem_do(int sid, unsigned short num, short op)
{
	struct sembuf b = { .sem_num = num, .sem_op = op };
	while (semop(sid, &b, 1) < 0)
		if (errno != EINTR)
			die("semop");
}

static void msg_send(int qid, long type)
{
	struct msg m = { .mtype = type };
	while (msgsnd(qid, &m, sizeof m.text, 0) < 0)
		if (errno != EINTR)
			die("msgsnd");
}

static void msg_recv(int qid, long type)
{
	struct msg m;
	while (msgrcv(qid, &m, sizeof m.text, type, 0) < 0)
		if (errno != EINTR)
			die("msgrcv");
}

/* The echo side: n message round trips, then n semaphore ones. */
static void pong(int qid, int sid, int n)
{
	for (int i = 0; i < n; i++) {
		msg_recv(qid, 1);
		msg_send(qid, 2);
	}
	for (int i = 0; i < n; i++) {
		sem_do(sid, 0, -1);
		sem_do(sid, 1, 1);
	}
}

/* The timing side; t has room for n round trips (the first WARMUP of
 * which are not counted). */
static void ping(int qid, int sid, int n, uint64_t *t, double *msg_us, double *sem_us)
{
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		msg_send(qid, 1);
		msg_recv(qid, 2);
		t[i] = now_ns() - t0;
	}
	*msg_us = median_us(t + WARMUP, n - WARMUP);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		sem_do(sid, 0, 1);
		sem_do(sid, 1, -1);
		t[i] = now_ns() - t0;
	}
	*sem_us = median_us(t + WARMUP, n - WARMUP);
}

static int cmd_pair(int n)
{
	uint64_t *t = calloc((size_t)n, sizeof *t);
	int qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	int sid = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	if (!t || qid < 0 || sid < 0)
		die("creating the private queue and set");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		pong(qid, sid, n);
		_exit(0);
	}
	double msg_us, sem_us;
	ping(qid, sid, n, t, &msg_us, &sem_us);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the echo child failed");
	/* Uncontended: one process, V then P on a semaphore nobody waits on. */
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		sem_do(sid, 0, 1);
		sem_do(sid, 0, -1);
		t[i] = now_ns() - t0;
	}
	double unc = median_us(t + WARMUP, n - WARMUP) / 2;
	msgctl(qid, IPC_RMID, NULL);
	semctl(sid, 0, IPC_RMID);
	printf("msg_rt_us %.2f sem_rt_us %.2f semop_us %.2f\n", msg_us, sem_us, unc);
	free(t);
	return 0;
}

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/* The child's end: a filter sending x86_64's System V msg and sem calls to
 * a listener, whose fd goes to the parent, then `pair`. */
static int floor_child(int sock, int n)
{
	static const uint32_t nrs[] = { SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl,
					SYS_semget, SYS_semop,  SYS_semctl, SYS_semtimedop };
	struct sock_filter f[4 + 2 * 8];
	size_t k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	}
	/* The last pair's "no" falls through to here. */
	struct sock_filter all[sizeof(f) / sizeof(f[0]) + 1];
	memcpy(all, f, k * sizeof(f[0]));
	all[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = all };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS");
	int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0)
		die("seccomp (a user-notification filter)");
	char byte = 0, cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec io = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &lfd, sizeof lfd);
	if (sendmsg(sock, &mh, 0) != 1)
		die("sending the listener");
	close(lfd);
	close(sock);
	return cmd_pair(n);
}

static int cmd_floor(int n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(sv[0]);
		exit(floor_child(sv[1], n));
	}
	close(sv[1]);
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec io = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	if (recvmsg(sv[0], &mh, 0) != 1 || !CMSG_FIRSTHDR(&mh))
		die("receiving the listener");
	int lfd;
	memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof lfd);
	close(sv[0]);
	/* As krgd does (6.6+): SEND wakes the caller on the listener's CPU. */
	uint64_t sync = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	(void)ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, sync);
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		die("SECCOMP_GET_NOTIF_SIZES");
	struct seccomp_notif *req = calloc(1, sz.seccomp_notif);
	struct seccomp_notif_resp *resp = calloc(1, sz.seccomp_notif_resp);
	if (!req || !resp)
		die("calloc");
	for (;;) {
		/* poll first, as krgd's loop does (epoll there). */
		struct pollfd pf = { .fd = lfd, .events = POLLIN };
		if (poll(&pf, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!(pf.revents & POLLIN))
			break; /* POLLHUP: the tree has ended */
		memset(req, 0, sz.seccomp_notif);
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			die("SECCOMP_IOCTL_NOTIF_RECV");
		}
		memset(resp, 0, sz.seccomp_notif_resp);
		resp->id = req->id;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT)
			die("SECCOMP_IOCTL_NOTIF_SEND");
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the notified pair failed");
	free(req);
	free(resp);
	return 0;
}

static int cmd_serve(key_t key, int n)
{
	int qid = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	int sid = semget(key, 2, IPC_CREAT | IPC_EXCL | 0600);
	if (qid < 0 || sid < 0)
		die("creating the queue and set of the key");
	printf("ready\n");
	fflush(stdout);
	pong(qid, sid, n);
	/* The timing side says when it is done with the objects. */
	msg_recv(qid, 3);
	msgctl(qid, IPC_RMID, NULL);
	semctl(sid, 0, IPC_RMID);
	return 0;
}

static int cmd_ping(key_t key, int n)
{
	uint64_t *t = calloc((size_t)n, sizeof *t);
	int qid = -1, sid = -1;
	for (int i = 0; i < 1000 && (qid < 0 || sid < 0); i++) {
		qid = msgget(key, 0600);
		sid = semget(key, 2, 0600);
		if (qid < 0 || sid < 0)
			usleep(10000);
	}
	if (!t || qid < 0 || sid < 0)
		die("the queue and set of the key");
	double msg_us, sem_us;
	ping(qid, sid, n, t, &msg_us, &sem_us);
	msg_send(qid, 3);
	printf("msg_rt_us %.2f sem_rt_us %.2f\n", msg_us, sem_us);
	free(t);
	return 0;
}

static void full_io(int fd, char *buf, size_t len, int wr)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = wr ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				errno = ECONNRESET;
			die("tcp");
		}
		done += (size_t)r;
	}
}

static int cmd_tcp_serve(int port, int n)
{
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0)
		die("tcp listen");
	printf("ready\n");
	fflush(stdout);
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die("accept");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char buf[PAYLOAD];
	for (int i = 0; i < n; i++) {
		full_io(fd, buf, sizeof buf, 0);
		full_io(fd, buf, sizeof buf, 1);
	}
	close(fd);
	close(l);
	return 0;
}

static int cmd_tcp_ping(const char *host, int port, int n)
{
	int one = 1;
	uint64_t *t = calloc((size_t)n, sizeof *t);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (!t || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "krg-bench-ipc: bad address %s\n", host);
		return 1;
	}
	int fd = -1;
	for (int i = 0; i < 500; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(10000);
	}
	if (fd < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char buf[PAYLOAD] = { 0 };
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		full_io(fd, buf, sizeof buf, 1);
		full_io(fd, buf, sizeof buf, 0);
		t[i] = now_ns() - t0;
	}
	printf("tcp_rt_us %.2f\n", median_us(t + WARMUP, n - WARMUP));
	close(fd);
	free(t);
	return 0;
}

static int num(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "krg-bench-ipc: bad number: %s\n", s);
		exit(2);
	}
	return (int)v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: krg-bench-ipc pair N | floor N | serve KEY N | ping KEY N | tcp-serve PORT N | tcp-ping HOST PORT N\n"
		   "  System V ping-pong timings (medians, us), native outside krg, the cluster's under krg run.\n"
		   "  N round trips of each kind (> %d; the first %d are warm-up).\n", WARMUP, WARMUP);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	const int max = 10000000;
	if (argc == 3 && !strcmp(argv[1], "pair"))
		return cmd_pair(num(argv[2], WARMUP + 1, max));
	if (argc == 3 && !strcmp(argv[1], "floor"))
		return cmd_floor(num(argv[2], WARMUP + 1, max));
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return cmd_serve((key_t)num(argv[2], 1, 0x7fffffff), num(argv[3], WARMUP + 1, max));
	if (argc == 4 && !strcmp(argv[1], "ping"))
		return cmd_ping((key_t)num(argv[2], 1, 0x7fffffff), num(argv[3], WARMUP + 1, max));
	if (argc == 4 && !strcmp(argv[1], "tcp-serve"))
		return cmd_tcp_serve(num(argv[2], 1, 65535), num(argv[3], WARMUP + 1, max));
	if (argc == 5 && !strcmp(argv[1], "tcp-ping"))
		return cmd_tcp_ping(argv[2], num(argv[3], 1, 65535), num(argv[4], WARMUP + 1, max));
	usage(stderr);
	return 2;
}
