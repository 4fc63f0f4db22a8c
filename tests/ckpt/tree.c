/* A process tree (zdtm shape): the root with
 *   A   a process-group leader, writing into a pipe the root reads, with a
 *       child A1 in A's group;
 *   B   a session leader, at the other end of a socketpair with bytes in
 *       flight both ways;
 *   Z7  a zombie that exited with status 7, ZT one killed by SIGTERM;
 * and a file opened before the forks whose offset A moves (one open file
 * description in three processes). After restart every process checks its
 * place in the tree, its group and session; the root reaps everyone. */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "zdtm.h"

#define FROM_A "written by A before the checkpoint"
#define TO_B "root to B"
#define TO_ROOT "B to root"

static void child_wait(void)
{
	test_wait();
}

/* A1: in A's group, A's child. */
static _Noreturn void run_a1(pid_t a)
{
	child_wait();
	if (getppid() != a)
		_exit(11);
	if (getpgid(0) != a)
		_exit(12);
	_exit(0);
}

static _Noreturn void run_a(int wfd, int shared, pid_t root)
{
	if (setpgid(0, 0) < 0)
		_exit(20);
	pid_t a1 = fork();
	if (a1 < 0)
		_exit(21);
	if (a1 == 0) {
		setpgid(0, getppid());
		run_a1(getppid());
	}
	setpgid(a1, getpid());
	if (lseek(shared, 3, SEEK_SET) != 3)
		_exit(22);
	if (write(wfd, FROM_A, sizeof(FROM_A)) != sizeof(FROM_A))
		_exit(23);
	child_wait();
	if (getppid() != root || getpgid(0) != getpid() || getpgid(a1) != getpid())
		_exit(24);
	kill(a1, SIGUSR1);
	int st;
	if (waitpid(a1, &st, 0) != a1 || !WIFEXITED(st) || WEXITSTATUS(st))
		_exit(25);
	_exit(0);
}

static _Noreturn void run_b(int sock, pid_t root)
{
	if (setsid() < 0)
		_exit(30);
	if (send(sock, TO_ROOT, sizeof(TO_ROOT), 0) != sizeof(TO_ROOT))
		_exit(31);
	child_wait();
	char buf[64];
	if (getppid() != root || getsid(0) != getpid() || getpgid(0) != getpid())
		_exit(32);
	if (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) != sizeof(TO_B) || memcmp(buf, TO_B, sizeof(TO_B)))
		_exit(33);
	_exit(0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid_t root = getpid(), sid = getsid(0), pgid = getpgid(0);
	char tmpl[] = "tree-shared-XXXXXX";
	int shared = mkstemp(tmpl);
	int p[2], sv[2];
	if (shared < 0 || write(shared, "0123456789", 10) != 10 || pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		fail("setup: %s", strerror(errno));
	unlink(tmpl);  /* deleted but open: its content travels in the image */
	pid_t a = fork();
	if (a == 0) {
		close(p[0]);
		close(sv[0]);
		close(sv[1]);
		run_a(p[1], shared, root);
	}
	close(p[1]);
	pid_t b = fork();
	if (b == 0) {
		close(p[0]);
		close(sv[0]);
		run_b(sv[1], root);
	}
	close(sv[1]);
	pid_t z7 = fork();
	if (z7 == 0)
		_exit(7);
	pid_t zt = fork();
	if (zt == 0) {
		for (;;)
			pause();
	}
	kill(zt, SIGTERM);
	/* Both dead, neither reaped. */
	siginfo_t si;
	if (waitid(P_PID, (id_t)z7, &si, WEXITED | WNOWAIT) < 0 || waitid(P_PID, (id_t)zt, &si, WEXITED | WNOWAIT) < 0)
		fail("waitid: %s", strerror(errno));
	/* A and B have sent: everything is in flight. */
	char buf[64];
	if (recv(sv[0], buf, sizeof(buf), MSG_PEEK) != sizeof(TO_ROOT) || send(sv[0], TO_B, sizeof(TO_B), 0) != sizeof(TO_B))
		fail("socketpair setup");
	for (int i = 0; i < 100; i++) {
		int n = 0;
		if (ioctl(p[0], FIONREAD, &n) == 0 && n == sizeof(FROM_A) && getpgid(a) == a)
			break;
		usleep(10000);
	}
	test_ready(argv);
	test_wait();

	if (getpid() != root)
		fail("pid %d, was %d", getpid(), root);
	/* The root's session and group were the driver's, outside the
	 * application: they come back as the restorer's. */
	(void)sid, (void)pgid;
	if (read(p[0], buf, sizeof(buf)) != sizeof(FROM_A) || memcmp(buf, FROM_A, sizeof(FROM_A)))
		fail("pipe from A: lost its bytes");
	if (recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT) != sizeof(TO_ROOT) || memcmp(buf, TO_ROOT, sizeof(TO_ROOT)))
		fail("socketpair from B: lost its bytes");
	if (lseek(shared, 0, SEEK_CUR) != 3)
		fail("shared file offset %lld, A had moved it to 3", (long long)lseek(shared, 0, SEEK_CUR));
	if (getpgid(a) != a)
		fail("A is in group %d, not its own", getpgid(a));
	if (getsid(b) != b)
		fail("B is in session %d, not its own", getsid(b));
	int st;
	if (waitpid(z7, &st, WNOHANG) != z7 || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		fail("zombie %d: not a zombie with status 7 (status %#x)", z7, st);
	if (waitpid(zt, &st, WNOHANG) != zt || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
		fail("zombie %d: not killed by SIGTERM (status %#x)", zt, st);
	kill(a, SIGUSR1);
	kill(b, SIGUSR1);
	if (waitpid(a, &st, 0) != a || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("A: status %#x", st);
	if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("B: status %#x", st);
	pass();
}
