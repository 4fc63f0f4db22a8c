/* store.c — see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckpt/store.h"
#include "lib/fileio.h"

const char *krg_ckpt_store(void)
{
	const char *s = getenv("KRG_CKPT_STORE");
	return s && *s ? s : KRG_CKPT_STORE_DEFAULT;
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


int krg_ckpt_store_dump(pid_t pid, uid_t uid, gid_t gid, uint32_t appid, const struct ckpt_dump_opts *o, char *msg,
			size_t len)
{
	char appdir[4096], vdir[4200];
	const char *store = krg_ckpt_store();
	int r = mkdirs(store, 0755);
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
	snprintf(tmpdir, sizeof(tmpdir), "%s/%s/%u.%d", store, KRG_CKPT_STORE_TMP, appid, (int)getpid());
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
	char appdir[4096], vdir[4200];
	const char *store = krg_ckpt_store();
	snprintf(appdir, sizeof(appdir), "%s/%u", store, appid);
	struct stat st;
	if (stat(appdir, &st) < 0) {
		int r = -errno;
		snprintf(msg, len, "no image of app %u in %s: %s", appid, store, strerror(errno));
		return r;
	}
	if (caller_uid != 0 && st.st_uid != caller_uid) {
		snprintf(msg, len, "the images of app %u belong to uid %u: permission denied", appid, (unsigned)st.st_uid);
		return -EPERM;
	}
	unsigned n = version;
	if (!n) {
		int r = krg_ckpt_versions(appdir, &n);
		if (r < 0 || n == 0) {
			snprintf(msg, len, "no image of app %u: %s", appid, r < 0 ? strerror(-r) : "no version saved");
			return r < 0 ? r : -ENOENT;
		}
	}
	if (snprintf(vdir, sizeof(vdir), "%s/v%u", appdir, n) >= (int)sizeof(vdir) || access(vdir, F_OK) < 0) {
		snprintf(msg, len, "app %u has no version %u", appid, n);
		return -ENOENT;
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
