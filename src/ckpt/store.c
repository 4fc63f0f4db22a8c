/* store.c — see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "ckpt/store.h"
#include "lib/fileio.h"

const char *krg_ckpt_store(void)
{
	const char *s = getenv("KRG_CKPT_STORE");
	return s && *s ? s : KRG_CKPT_STORE_DEFAULT;
}

/* kdfs (krg_ckpt_store_kdfs_set): the mount, KDFS/.krg/chkpt, the node. */
static char kdfs_mnt[PATH_MAX], kdfs_store[PATH_MAX + 16];
static uint32_t kdfs_node;
#define FUSE_MAGIC 0x65735546 /* statfs f_type of a FUSE mount */

void krg_ckpt_store_kdfs_set(const char *mount, uint32_t node)
{
	kdfs_node = node;
	kdfs_mnt[0] = kdfs_store[0] = 0;
	if (!mount || !*mount || strlen(mount) >= sizeof(kdfs_mnt))
		return;
	snprintf(kdfs_mnt, sizeof(kdfs_mnt), "%s", mount);
	size_t n = strlen(kdfs_mnt);
	while (n > 1 && kdfs_mnt[n - 1] == '/')
		kdfs_mnt[--n] = 0;
	snprintf(kdfs_store, sizeof(kdfs_store), "%s/.krg/chkpt", n == 1 ? "" : kdfs_mnt);
}

const char *krg_ckpt_store_kdfs(void)
{
	return kdfs_store[0] ? kdfs_store : NULL;
}

bool krg_ckpt_store_in_kdfs(const char *path)
{
	size_t n = strlen(kdfs_store);
	return n && !strncmp(path, kdfs_store, n) && (path[n] == '/' || !path[n]);
}

/* One of the kdfs store's own directories: root's, a directory, written
 * by root only (made 0711 when absent, with make). */
static int root_dir_ok(const char *path, bool make, char *msg, size_t len)
{
	struct stat st;
	if (make && mkdir(path, 0711) == 0 && chmod(path, 0711) < 0) {
		int r = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(-r));
		return r;
	}
	if (lstat(path, &st) < 0) {
		int r = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(-r));
		return r == -ENOENT ? -ENODEV : r;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		snprintf(msg, len, "%s is not root's own directory (uid %u, mode %04o): images are not kept there", path,
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int krg_ckpt_store_kdfs_ready(bool make, char *msg, size_t len)
{
	if (!kdfs_store[0]) {
		snprintf(msg, len, "kdfs is off");
		return -ENODEV;
	}
	/* Mounted: a FUSE file system other than its parent's. A mount point
	 * left without its file system (its client restarting) is a plain
	 * directory of this node: never an image store. */
	char up[PATH_MAX + 8];
	struct statfs sf;
	struct stat m, parent;
	snprintf(up, sizeof(up), "%s/..", kdfs_mnt);
	if (statfs(kdfs_mnt, &sf) < 0 || sf.f_type != FUSE_MAGIC || stat(kdfs_mnt, &m) < 0 || stat(up, &parent) < 0 ||
	    m.st_dev == parent.st_dev) {
		snprintf(msg, len, "kdfs is not mounted on %s", kdfs_mnt);
		return -ENODEV;
	}
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/.krg", kdfs_mnt);
	int r = root_dir_ok(dir, make, msg, len);
	return r < 0 ? r : root_dir_ok(kdfs_store, make, msg, len);
}

static int mkdirs(const char *path, mode_t mode)
{
	char p[4096];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, mode) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int krg_ckpt_versions(const char *appdir, unsigned *max_out)
{
	DIR *d = opendir(appdir);
	if (!d)
		return -errno;
	unsigned max = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (e->d_name[0] != 'v' || !e->d_name[1])
			continue;
		unsigned long n = strtoul(e->d_name + 1, &end, 10);
		if (!*end && n > max && n < 1000000)
			max = (unsigned)n;
	}
	closedir(d);
	*max_out = max;
	return 0;
}

static int chown_image(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
	if (fchown(dirfd(d), uid, gid) < 0)
		r = -errno;
	closedir(d);
	return r;
}
/* DIR/NAME made (0600, not there before) holding `line` and a newline.
 * 0, or -errno with msg saying which file. */
static int write_line(const char *dir, const char *name, const char *line, char *msg, size_t len)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
		int r = errno ? -errno : -EIO;
		if (!f && fd >= 0)
			close(fd);
		snprintf(msg, len, "%s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}


static uint8_t kdfs_gone_nodes[256 / 8];

void krg_ckpt_store_kdfs_gone(uint32_t node, bool gone)
{
	if (node >= 256)
		return;
	if (gone)
		kdfs_gone_nodes[node / 8] |= (uint8_t)(1u << (node % 8));
	else
		kdfs_gone_nodes[node / 8] &= (uint8_t)~(1u << (node % 8));
}

/* The temporary versions in the kdfs store whose writers are gone: this
 * node's whose process is no more, and those of nodes down or gone from
 * the cluster (a writer cut off there fails its rename; a node that is
 * up judges its own). A dump there first removes them, as krgd's start
 * does in the node's own store. Names: <appid>.n<node>.<pid>. */
static void kdfs_clean_tmp(const char *tmpdir)
{
	DIR *t = opendir(tmpdir);
	struct dirent *e;
	while (t && (e = readdir(t))) {
		const char *p = strstr(e->d_name, ".n");
		char *end;
		unsigned long node = p ? strtoul(p + 2, &end, 10) : 0;
		if (!p || end == p + 2 || *end != '.')
			continue;
		long pid = strtol(end + 1, NULL, 10);
		bool gone = node < 256 && (kdfs_gone_nodes[node / 8] >> (node % 8) & 1);
		if (node != kdfs_node && !gone)
			continue;
		if (node == kdfs_node && pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue;
		krg_rm_tree(dirfd(t), e->d_name, NULL);
	}
	if (t)
		closedir(t);
}

int krg_ckpt_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
			size_t len)
{
	return krg_ckpt_store_dump_in(krg_ckpt_store(), pid, uid, gid, appid, o, msg, len);
}

int krg_ckpt_store_dump_in(const char *store, pid_t pid, uid_t uid, gid_t gid, uint32_t appid,
			   const struct ckpt_dump_opts *o, char *msg, size_t len)
{
	char appdir[4096], vdir[4200];
	bool kdfs = krg_ckpt_store_in_kdfs(store);
	int r = kdfs ? 0 : mkdirs(store, 0755); /* kdfs's: krg_ckpt_store_kdfs_ready */
	if (r < 0) {
		snprintf(msg, len, "image store %s: %s", store, strerror(-r));
		return r;
	}
	snprintf(appdir, sizeof(appdir), "%s/%u", store, appid);
	if (mkdir(appdir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(msg, len, "%s: %s", appdir, strerror(errno));
		return r;
	}
	struct stat ast;
	if (lstat(appdir, &ast) < 0 || !S_ISDIR(ast.st_mode)) {
		snprintf(msg, len, "%s is not a directory", appdir);
		return -ENOTDIR;
	}
	if ((ast.st_uid != uid && ast.st_uid != 0) || chown(appdir, uid, gid) < 0 || chmod(appdir, 0700) < 0) {
		snprintf(msg, len, "%s belongs to uid %u, process %d to uid %u: refusing to mix them", appdir,
			 (unsigned)ast.st_uid, (int)pid, (unsigned)uid);
		return -EPERM;
	}
	/* Written where nobody looks for versions (and where a krgd starting
	 * after a crash removes it, krg_ckpt_store_clean), then renamed into
	 * place whole: a version is either complete or absent. Root's own
	 * directory, so nothing half-written is in the user's. */
	char tmpdir[4200];
	snprintf(tmpdir, sizeof(tmpdir), "%s/%s", store, KRG_CKPT_STORE_TMP);
	if (mkdir(tmpdir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(msg, len, "%s: %s", tmpdir, strerror(errno));
		return r;
	}
	if (kdfs) {
		kdfs_clean_tmp(tmpdir);
		/* Every node writes there: its id in the name too. */
		snprintf(tmpdir, sizeof(tmpdir), "%s/%s/%u.n%u.%d", store, KRG_CKPT_STORE_TMP, appid, kdfs_node,
			 (int)getpid());
	} else {
		snprintf(tmpdir, sizeof(tmpdir), "%s/%s/%u.%d", store, KRG_CKPT_STORE_TMP, appid, (int)getpid());
	}
	krg_rm_tree(AT_FDCWD, tmpdir, NULL);
	struct ckpt_error err = { 0 };
	if ((r = ckpt_dump(pid, tmpdir, o, &err)) < 0) {
		krg_rm_tree(AT_FDCWD, tmpdir, NULL);
		snprintf(msg, len, "%s", err.msg);
		return r;
	}
	char vh[16];
	snprintf(vh, sizeof(vh), "%u", o->view_home);
	if ((o->description && (r = write_line(tmpdir, "description", o->description, msg, len)) < 0) ||
	    (o->view_home && (r = write_line(tmpdir, "view", vh, msg, len)) < 0)) {
		krg_rm_tree(AT_FDCWD, tmpdir, NULL);
		return r;
	}
	if ((r = chown_image(tmpdir, uid, gid)) < 0) {
		snprintf(msg, len, "giving %s to uid %u: %s", tmpdir, (unsigned)uid, strerror(-r));
		krg_rm_tree(AT_FDCWD, tmpdir, NULL);
		return r;
	}
	unsigned n;
	if ((r = krg_ckpt_versions(appdir, &n)) < 0) {
		snprintf(msg, len, "%s: %s", appdir, strerror(-r));
		krg_rm_tree(AT_FDCWD, tmpdir, NULL);
		return r;
	}
	/* The next number free: another dump of the app may take one first. */
	for (n++;; n++) {
		snprintf(vdir, sizeof(vdir), "%s/v%u", appdir, n);
		if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, vdir, RENAME_NOREPLACE) == 0)
			break;
		if (errno != EEXIST) {
			r = -errno;
			snprintf(msg, len, "%s: %s", vdir, strerror(errno));
			krg_rm_tree(AT_FDCWD, tmpdir, NULL);
			return r;
		}
	}
	int afd = open(appdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (afd >= 0) {
		fsync(afd); /* the rename is durable, as the image already is */
		close(afd);
	}
	snprintf(msg, len, "%s", vdir);
	return 0;
}

/* v<n> holds what an image writer left half-done: a part still under
 * its temporary name (.NAME.tmp), or nothing at all (the directory made
 * before a dump, by krg before this store wrote versions elsewhere). */
static bool partial_version(int appfd, const char *name)
{
	int fd = openat(appfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	bool empty = true, tmp = false;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		empty = false;
		if (e->d_name[0] == '.' && l > 5 && !strcmp(e->d_name + l - 4, ".tmp"))
			tmp = true;
	}
	closedir(d);
	return empty || tmp;
}

int krg_ckpt_store_clean(void (*removed)(const char *path, uint64_t bytes, void *data), void *data)
{
	const char *store = krg_ckpt_store();
	char path[4400];
	int r = 0, k;
	DIR *s = opendir(store);
	if (!s)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	/* Versions being written by a krgd (or krg) gone: its pid is in the
	 * name; one still alive keeps its directory. */
	snprintf(path, sizeof(path), "%s/%s", store, KRG_CKPT_STORE_TMP);
	DIR *t = opendir(path);
	while (t && (e = readdir(t))) {
		const char *dot = strrchr(e->d_name, '.');
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		long pid = dot ? strtol(dot + 1, NULL, 10) : 0;
		if (pid > 0 && pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue;
		uint64_t bytes = 0;
		if ((k = krg_rm_tree(dirfd(t), e->d_name, &bytes)) < 0 && !r)
			r = k;
		snprintf(path, sizeof(path), "%s/%s/%s", store, KRG_CKPT_STORE_TMP, e->d_name);
		if (removed && k == 0)
			removed(path, bytes, data);
	}
	if (t)
		closedir(t);
	/* And half-written versions in the users' directories. */
	while ((e = readdir(s))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int afd = openat(dirfd(s), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *a = afd >= 0 ? fdopendir(afd) : NULL;
		if (!a) {
			if (afd >= 0)
				close(afd);
			continue;
		}
		struct dirent *v;
		while ((v = readdir(a))) {
			if (v->d_name[0] != 'v' || !partial_version(dirfd(a), v->d_name))
				continue;
			uint64_t bytes = 0;
			if ((k = krg_rm_tree(dirfd(a), v->d_name, &bytes)) < 0 && !r)
				r = k;
			snprintf(path, sizeof(path), "%s/%s/%s", store, e->d_name, v->d_name);
			if (removed && k == 0)
				removed(path, bytes, data);
		}
		closedir(a);
	}
	closedir(s);
	return r;
}

int krg_ckpt_store_find(uint32_t appid, uint32_t version, uid_t caller_uid, char *msg, size_t len)
{
	return krg_ckpt_store_find_in(krg_ckpt_store(), appid, version, caller_uid, msg, len);
}

/* dir (an image directory of the store) is a real directory that only
 * its owner may use. 0, or -EPERM and why. */
static int private_dir(const char *dir, const struct stat *st, char *msg, size_t len)
{
	if (!S_ISDIR(st->st_mode)) {
		snprintf(msg, len, "%s is not a directory: refused", dir);
		return -EPERM;
	}
	if (st->st_mode & 077) {
		snprintf(msg, len, "%s has mode %04o (others may use it, images are 0700): refused", dir,
			 (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int krg_ckpt_store_find_in(const char *store, uint32_t appid, uint32_t version, uid_t caller_uid, char *msg,
			   size_t len)
{
	char appdir[4096], vdir[4200];
	if (krg_ckpt_store_in_kdfs(store)) {
		int r = krg_ckpt_store_kdfs_ready(false, msg, len);
		if (r == -ENODEV) {
			snprintf(msg, len, "no image of app %u in %s: %s", appid, store, strerror(ENOENT));
			return -ENOENT;
		}
		if (r < 0)
			return r;
	}
	snprintf(appdir, sizeof(appdir), "%s/%u", store, appid);
	struct stat st, vst;
	if (lstat(appdir, &st) < 0) {
		int r = -errno;
		snprintf(msg, len, "no image of app %u in %s: %s", appid, store, strerror(errno));
		return r;
	}
	if (caller_uid != 0 && st.st_uid != caller_uid) {
		snprintf(msg, len, "the images of app %u belong to uid %u: permission denied", appid, (unsigned)st.st_uid);
		return -EPERM;
	}
	int r = private_dir(appdir, &st, msg, len);
	if (r < 0)
		return r;
	unsigned n = version;
	if (!n) {
		r = krg_ckpt_versions(appdir, &n);
		if (r < 0 || n == 0) {
			snprintf(msg, len, "no image of app %u: %s", appid, r < 0 ? strerror(-r) : "no version saved");
			return r < 0 ? r : -ENOENT;
		}
	}
	if (snprintf(vdir, sizeof(vdir), "%s/v%u", appdir, n) >= (int)sizeof(vdir) || lstat(vdir, &vst) < 0) {
		snprintf(msg, len, "app %u has no version %u", appid, n);
		return -ENOENT;
	}
	if ((r = private_dir(vdir, &vst, msg, len)) < 0)
		return r;
	/* Root's versions may sit in a user's directory (a set-uid program's,
	 * restored only with root's check of the uids it asks for); anyone
	 * else's may not: that user could have written any image. */
	if (vst.st_uid != st.st_uid && vst.st_uid != 0) {
		snprintf(msg, len, "%s belongs to uid %u, the images of app %u to uid %u: refused", vdir,
			 (unsigned)vst.st_uid, appid, (unsigned)st.st_uid);
		return -EPERM;
	}
	snprintf(msg, len, "%s", vdir);
	return 0;
}

int krg_ckpt_store_view(const char *vdir, uint32_t *node)
{
	char p[4300], buf[32];
	snprintf(p, sizeof(p), "%s/view", vdir);
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unsigned v;
	char end;
	if (n <= 0 || (buf[n] = 0, sscanf(buf, "%u%c", &v, &end) != 2) || end != '\n' || !v)
		return -EBADMSG;
	*node = v;
	return 0;
}
