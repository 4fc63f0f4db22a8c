/* vc_util.c — small file, process and error helpers for vcluster. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "vc.h"
#include "lib/fileio.h"

static char err_buf[512];
static bool err_set;

int vc_fail(int r, const char *fmt, ...)
{
	va_list ap;

	/* The first (innermost) reason is the precise one; callers up the
	 * stack may call again with a vaguer one, which is dropped. */
	if (err_set)
		return r;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	err_set = true;
	return r;
}

const char *vc_error(void) { return err_set ? err_buf : NULL; }
void vc_error_clear(void) { err_set = false; err_buf[0] = 0; }

int vc_write_file(const char *path, const char *text, mode_t mode)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return vc_fail(-errno, "cannot create %s: %s", path, strerror(errno));
	/* O_CREAT's mode is filtered by umask; the key must be exactly 0600. */
	if (fchmod(fd, mode) < 0)
		return vc_fail(-errno, "cannot chmod %s: %s", path, strerror(errno));
	int r = krg_write_all(fd, text, strlen(text));
	if (r < 0)
		return vc_fail(r, "cannot write %s: %s", path, strerror(-r));
	return 0;
}

int vc_write_knob(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Kernel knobs take the value in a single write. */
	ssize_t w = write(fd, text, strlen(text));
	if (w < 0)
		return -errno;
	return 0;
}

int vc_read_file(const char *path, char **out)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (cap - len < 1024) {
			cap = cap ? cap * 2 : 4096;
			char *nb = realloc(buf, cap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	buf[len] = 0;
	*out = TAKE_PTR(buf);
	return (int)len;
}

int vc_read_long(const char *path, long *out)
{
	_cleanup_free_ char *s = NULL;
	char *end;
	int r = vc_read_file(path, &s);

	if (r < 0)
		return r;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || (*end && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

int vc_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return vc_fail(-errno, "cannot create directory %s: %s", buf, strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int vc_rm_rf(const char *path)
{
	if (access(path, F_OK) < 0)
		return 0;
	int r = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r != 0)
		return vc_fail(r < 0 ? r : -EIO, "cannot remove %s: %s", path, strerror(r < 0 ? -r : EIO));
	return 0;
}

int vc_run(const char *const *argv)
{
	int pfd[2];
	char msg[256] = "";

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return vc_fail(-errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return vc_fail(r, "fork: %s", strerror(-r));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		dup2(pfd[1], 2);
		execvp(argv[0], (char *const *)argv);
		/* root's PATH may lack the sbin dirs where iproute2 lives. */
		if (errno == ENOENT && !strchr(argv[0], '/')) {
			char alt[256];
			snprintf(alt, sizeof(alt), "/usr/sbin/%s", argv[0]);
			execv(alt, (char *const *)argv);
			snprintf(alt, sizeof(alt), "/sbin/%s", argv[0]);
			execv(alt, (char *const *)argv);
			errno = ENOENT;
		}
		dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	/* Drain all of stderr (so the child never blocks), keep the start. */
	size_t used = 0;
	for (;;) {
		char tmp[512];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t take = MIN((size_t)n, sizeof(msg) - 1 - used);
		memcpy(msg + used, tmp, take);
		used += take;
		msg[used] = 0;
	}
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return vc_fail(-errno, "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	msg[strcspn(msg, "\n")] = 0;
	char cmd[256] = "";
	for (size_t i = 0, off = 0; argv[i] && off < sizeof(cmd) - 1; i++)
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "", argv[i]);
	return vc_fail(-EIO, "'%s' failed: %s", cmd, msg[0] ? msg : "no message");
}

int vc_self_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return vc_fail(-errno, "cannot read /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	if (snprintf(buf, len, "%s", dirname(exe)) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int vc_keep_fds(int *keep[], size_t n)
{
	int tmp[8];

	if (n > ARRAY_SIZE(tmp))
		return -EINVAL;
	/* Copy out of the way first so the dup2 targets never clobber an fd
	 * still to be moved. */
	for (size_t i = 0; i < n; i++) {
		tmp[i] = fcntl(*keep[i], F_DUPFD_CLOEXEC, 100);
		if (tmp[i] < 0)
			return -errno;
	}
	for (size_t i = 0; i < n; i++) {
		int target = 3 + (int)i;
		if (dup3(tmp[i], target, O_CLOEXEC) < 0)
			return -errno;
		*keep[i] = target;
	}
	if (syscall(SYS_close_range, 3 + n, ~0U, 0) < 0) {
		/* Old kernel: close what /proc/self/fd shows. */
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			return -errno;
		int dfd = dirfd(d);
		struct dirent *de;
		while ((de = readdir(d))) {
			int fd = atoi(de->d_name);
			if (fd >= 3 + (int)n && fd != dfd)
				close(fd);
		}
		closedir(d);
	}
	return 0;
}

int vc_redirect_stdio(int fd)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (devnull < 0)
		return -errno;
	if (dup2(devnull, 0) < 0 || dup2(fd >= 0 ? fd : devnull, 1) < 0 || dup2(fd >= 0 ? fd : devnull, 2) < 0) {
		int r = -errno;
		close(devnull);
		return r;
	}
	close(devnull);
	return 0;
}

void vc_msleep(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

long vc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

bool vc_pid_alive(pid_t pid)
{
	char path[64], buf[512];

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* "pid (comm) S ..." — comm may hold spaces or parens, so use the
	 * last ')'. Orphaned zombies are never reaped on these machines (host
	 * pid 1 does not wait), so a zombie counts as gone. */
	char *p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return false;
	return p[2] != 'Z' && p[2] != 'X';
}

int vc_wait_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
