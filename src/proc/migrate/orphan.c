/* orphan.c — a migrant whose home node was declared down runs on here
 * (migrant_outlives_home; docs/reconfiguration.md "A migrant's home
 * dies"). The node running it becomes its home: nobody else knows where
 * it is, and only a node the majority still counts as up gets here (a
 * node_down is applied from the log). What it had at home cannot come
 * along: its parent, its terminal, the `krg run` that streamed its
 * output died with the home node. So its input ends (end of file on
 * every fd it read from home), what it writes goes to
 * STATE_DIR/orphans/ID.out (0600, the migrant's owner), and its exit
 * status to ID.status beside it, and the log. Frames the old home sends
 * about it later (it was cut off, not dead) are refused (mig_io.c): it
 * has one home. */
#include "proc/migrate/migsvc-int.h"

/* dir/orphans, made once (0700 root: the files in it are the users'). */
static int orphan_dir(char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/orphans", the_mig.s->cfg->state_dir);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A file of the orphan's, created afresh and owned by the migrant's
 * owner (who /proc/PID belonged to at adoption). */
static int orphan_file(const struct hold *h, const char *suffix)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int r = orphan_dir(dir, sizeof(dir));
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%u.%s", dir, h->id, suffix);
	unlink(path); /* an id used again: the previous one's file goes */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fchown(fd, h->orphan_uid, h->orphan_gid) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

int mig_orphan_adopt(struct hold *h, uint32_t home)
{
	char proc[32];
	struct stat st;
	snprintf(proc, sizeof(proc), "/proc/%d", (int)h->pid);
	if (stat(proc, &st) < 0)
		return -errno;
	h->orphan_uid = st.st_uid;
	h->orphan_gid = st.st_gid;
	int fd = orphan_file(h, "out");
	if (fd < 0)
		return fd;
	h->orphan = true;
	h->out_fd = fd;
	/* What it wrote that home never acknowledged is lost with home: the
	 * holder may read a whole window again. Its input came from home:
	 * it ends. */
	for (size_t i = 0; i < h->np; i++) {
		if (h->reads[i])
			mig_conn_send(h->c, MF_EOF, h->num[i], 0, NULL, 0);
		else
			mig_conn_send(h->c, MF_ACK, h->num[i], INT32_MAX, NULL, 0);
	}
	log_warn("migrate: home node %u of %u is down: it runs on, node %u is its home now; its output goes to %s/orphans/%u.out",
		 home, h->id, the_mig.self, the_mig.s->cfg->state_dir, h->id);
	return 0;
}

void mig_orphan_output(struct hold *h, const struct mig_hdr *hd, const uint8_t *data, size_t len)
{
	if (hd->type != MF_DATA)
		return;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(h->out_fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("migrate: orphan %u: cannot write its output: %s", h->id, n < 0 ? strerror(errno) : "short write");
			break;
		}
		off += (size_t)n;
	}
	/* Taken (written or dropped): the holder may read on. */
	mig_conn_send(h->c, MF_ACK, hd->fd, (int64_t)len, NULL, 0);
}

void mig_orphan_exit(struct hold *h, int status)
{
	char text[64];
	if (WIFEXITED(status))
		snprintf(text, sizeof(text), "exited %d\n", WEXITSTATUS(status));
	else
		snprintf(text, sizeof(text), "killed by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL);
	int fd = orphan_file(h, "status");
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		log_warn("migrate: orphan %u: cannot record its status: %s", h->id, strerror(fd < 0 ? -fd : errno));
	if (fd >= 0)
		close(fd);
	log_warn("migrate: orphan %u (home node %u was down, node %u its home since) %.*s", h->id, h->home, the_mig.self,
		 (int)strlen(text) - 1, text);
}

void mig_orphan_close(struct hold *h)
{
	if (h->orphan && h->out_fd >= 0)
		close(h->out_fd);
	h->out_fd = -1;
}

/* The table's orphan hook (krg_proc_table_set_orphan). */
pid_t mig_orphan_pid(void *data, uint32_t id)
{
	struct krg_migsvc *m = data;
	struct hold *h = m->running ? mig_hold_by_id(id) : NULL;
	return h && h->orphan && !h->exited ? h->pid : 0;
}
