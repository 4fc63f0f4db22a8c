/* test_map_answer.c — ckpt_map_answer (src/ckpt/map_answer.c): a shmat
 * held in a seccomp user notification answered with a mapping of a memfd
 * that the "listener" (this process) owns: ADDFD, then the injection.
 * The caller is an ordinary child under a filter that notifies shmat; it
 * sees shmat return an address where the listener's bytes are, its
 * stores reach the listener's memfd, the installed fd is closed again;
 * a mapping that fails answers the call with the mmap's errno. And the
 * whole mechanism under the DSM: three unmodified callers, one per DSM
 * node (threads of this process over socketpairs), each gets node i's
 * segment from shmat with its userfaultfd registered before it runs
 * again; their __atomic_fetch_add counter ends exact. Root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "ckpt/ckpt.h"
#include "dsm/dsm.h"
#include "dsm/dsm_sock.h"
#include "lib/fdpass.h"

#define HELLO "bytes the listener wrote"
#define BACK "bytes the caller stored"

static int nfds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static void send_fd(int sock, int fd)
{
	if (krg_fd_send(sock, "f", 1, fd, 0) < 0)
		_exit(80);
}

static int recv_fd(int sock)
{
	char c;
	struct iovec io = { &c, 1 };
	int fd;
	return krg_fd_recvv(sock, &io, 1, 0, &fd) == 1 ? fd : -1;
}

/* In a caller: its shmat calls go to a seccomp listener, handed over
 * sock to the test. 0, or the caller's exit status for what failed. */
static int shmat_notified(int sock)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_shmat, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { 4, f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return 81;
	int l = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
	if (l < 0)
		return 82;
	send_fd(sock, l);
	close(l);
	return 0;
}

/* The caller: shmat twice (answered with a mapping, then with an error). */
static int child(int sock)
{
	int e = shmat_notified(sock);
	if (e)
		return e;
	int before = nfds();
	char *a = shmat(4242, NULL, 0);
	if (a == (void *)-1)
		return 83;
	if (memcmp(a, HELLO, sizeof HELLO))
		return 84;
	memcpy(a + 100, BACK, sizeof BACK);
	if (nfds() != before)
		return 85;  /* the fd installed for the mmap is closed again */
	errno = 0;
	if (shmat(4243, NULL, 0) != (void *)-1 || errno != EINVAL)
		return 86;
	return 0;
}

static void answers(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0)
		_exit(child(sv[1]));
	int l = recv_fd(sv[0]);
	assert_true(l >= 0);
	int mfd = memfd_create("seg", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, 4 * DSM_PAGE_SIZE), 0);
	assert_int_equal(pwrite(mfd, HELLO, sizeof HELLO, 0), (ssize_t)sizeof HELLO);
	for (int round = 0; round < 2; round++) {
		struct seccomp_notif n;
		memset(&n, 0, sizeof n);
		assert_int_equal(ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n), 0);
		assert_int_equal(n.data.nr, SYS_shmat);
		struct seccomp_notif_addfd af = { .id = n.id, .srcfd = (uint32_t)mfd, .newfd_flags = O_CLOEXEC };
		int there = ioctl(l, SECCOMP_IOCTL_NOTIF_ADDFD, &af);
		assert_true(there >= 0);
		struct ckpt_error err = { 0 };
		uint64_t at = 0, t0 = dsm_now_ns();
		/* Round 2: size 0, the mmap fails with EINVAL: that is the answer. */
		int r = ckpt_map_answer(c, (pid_t)n.pid, SYS_shmat, there, -1, 0, round ? 0 : 4 * DSM_PAGE_SIZE,
					PROT_READ | PROT_WRITE, MAP_SHARED, &at, NULL, &err);
		double us = (double)(dsm_now_ns() - t0) / 1000.0;
		if (round == 0) {
			if (r != 0)
				fail_msg("ckpt_map_answer: %s", err.msg);
			assert_true(at != 0);
			printf("shmat answered with a mapping at %#lx in %.1f us\n", (unsigned long)at, us);
		} else {
			assert_int_equal(r, -EINVAL);
		}
		/* The notification is gone with the freeze: nothing to SEND. */
		uint64_t id = n.id;
		assert_int_not_equal(ioctl(l, SECCOMP_IOCTL_NOTIF_ID_VALID, &id), 0);
	}
	int st;
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char back[sizeof BACK];
	assert_int_equal(pread(mfd, back, sizeof back, 100), (ssize_t)sizeof back);
	assert_memory_equal(back, BACK, sizeof BACK);
	close(mfd);
	close(l);
	close(sv[0]);
	close(sv[1]);
}

/* ---- shmat answered with a DSM-coherent segment ---------------------------- */

#define NODES 3
#define NPAGES 8
#define INCS 3000

/* The caller: shmat, then plain atomic increments, then the total seen. */
static int dsm_child(int sock, uint64_t off)
{
	int e = shmat_notified(sock);
	if (e)
		return e;
	uint8_t *a = shmat(4242, NULL, 0);
	if (a == (void *)-1)
		return 83;
	char go;
	if (read(sock, &go, 1) != 1)  /* all callers attached: start together */
		return 84;
	uint64_t *ctr = (uint64_t *)(a + off);
	for (int i = 0; i < INCS; i++) {
		__atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
		if (i % 8 == 0)
			usleep(20);  /* let the others in: the page must move */
	}
	return 0;
}

static void dsm_shmat(void **state)
{
	int fds[NODES][NODES];
	for (int i = 0; i < NODES; i++)
		for (int j = i + 1; j < NODES; j++) {
			int sv[2];
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			fds[i][j] = sv[0];
			fds[j][i] = sv[1];
		}
	struct dsm_sock *node[NODES];
	for (uint32_t i = 0; i < NODES; i++) {
		struct dsm_config cfg = { .seg = 42, .self = i, .nnodes = NODES, .npages = NPAGES,
					  .min_residency_ns = 200000 };
		int r = dsm_sock_start(&cfg, fds[i], &node[i]);
		if (r < 0)
			fail_msg("dsm_sock_start: %s", strerror(-r));
	}
	/* The counter on a page homed at node 2. */
	uint64_t off = 0;
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (dsm_page_home(42, pg, NODES) == 2) {
			off = pg * DSM_PAGE_SIZE + 24;
			break;
		}
	pid_t pid[NODES];
	int view[NODES], gos[NODES];
	for (int i = 0; i < NODES; i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		fflush(NULL);
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0)
			_exit(dsm_child(sv[1], off));
		close(sv[1]);
		int l = recv_fd(sv[0]);
		gos[i] = sv[0];
		assert_true(l >= 0);
		struct seccomp_notif n;
		memset(&n, 0, sizeof n);
		assert_int_equal(ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n), 0);
		struct dsm_node *dn = dsm_sock_node(node[i]);
		struct seccomp_notif_addfd af = { .id = n.id, .srcfd = (uint32_t)dsm_node_memfd(dn), .newfd_flags = O_CLOEXEC };
		int there = ioctl(l, SECCOMP_IOCTL_NOTIF_ADDFD, &af);
		assert_true(there >= 0);
		struct ckpt_error err = { 0 };
		uint64_t at = 0;
		int uffd = -1;
		if (ckpt_map_answer(pid[i], (pid_t)n.pid, SYS_shmat, there, -1, 0, dsm_node_size(dn), PROT_READ | PROT_WRITE,
				    MAP_SHARED, &at, &uffd, &err) < 0)
			fail_msg("ckpt_map_answer: %s", err.msg);
		/* The caller may fault already: it waits in its userfaultfd. */
		view[i] = dsm_sock_attach(node[i], uffd, at);
		assert_true(view[i] > 0);
		close(l);
	}
	for (int i = 0; i < NODES; i++) {
		assert_int_equal(write(gos[i], "g", 1), 1);
		close(gos[i]);
	}
	for (int i = 0; i < NODES; i++) {
		int st;
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("caller %d: status 0x%x", i, st);
		dsm_sock_detach(node[i], view[i]);
	}
	uint64_t moved = 0;
	for (int i = 0; i < NODES; i++) {
		volatile uint8_t *m = dsm_node_addr(dsm_sock_node(node[i]));
		assert_int_equal(__atomic_load_n((volatile uint64_t *)(m + off), __ATOMIC_SEQ_CST), NODES * INCS);
		struct dsm_stats st;
		dsm_sock_stats(node[i], &st);
		moved += st.write_miss;
	}
	printf("counter %d exact on every node; write misses %lu\n", NODES * INCS, (unsigned long)moved);
	assert_true(moved >= 10 * NODES);  /* the page really went around */
	for (int i = 0; i < NODES; i++)
		dsm_sock_stop(node[i]);
}

/* A thread that is not in the call: -EAGAIN, and it goes on untouched. */
static void not_waiting(void **state)
{
	fflush(NULL);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		pause();
		_exit(0);
	}
	usleep(50000);
	struct ckpt_error err = { 0 };
	uint64_t at = 0;
	assert_int_equal(ckpt_map_answer(c, c, SYS_shmat, 3, -1, 0, 4096, PROT_READ, MAP_SHARED, &at, NULL, &err), -EAGAIN);
	assert_true(strstr(err.msg, "not waiting") != NULL);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_map_answer: needs root (ptrace, ADDFD)\n");
		return 1;
	}
	const struct CMUnitTest tests[] = { cmocka_unit_test(answers), cmocka_unit_test(not_waiting),
					    cmocka_unit_test(dsm_shmat) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
