/* store.c — see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckpt/store.h"

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
	unsigned n;
	if ((r = krg_ckpt_versions(appdir, &n)) < 0) {
		snprintf(msg, len, "%s: %s", appdir, strerror(-r));
		return r;
	}
	for (n++;; n++) {
		snprintf(vdir, sizeof(vdir), "%s/v%u", appdir, n);
		if (mkdir(vdir, 0700) == 0)
			break;
		if (errno != EEXIST) {
			r = -errno;
			snprintf(msg, len, "%s: %s", vdir, strerror(errno));
			return r;
		}
	}
	struct ckpt_error err = { { 0 } };
	if ((r = ckpt_dump(pid, vdir, o, &err)) < 0) {
		rmdir(vdir);
		snprintf(msg, len, "%s", err.msg);
		return r;
	}
	if (o->description) {
		char df[4300];
		snprintf(df, sizeof(df), "%s/description", vdir);
		int fd = open(df, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f || fprintf(f, "%s\n", o->description) < 0 || fclose(f) != 0) {
			r = -errno;
			snprintf(msg, len, "%s: %s (the image is good)", df, strerror(errno));
			return r ? r : -EIO;
		}
	}
	if ((r = chown_image(vdir, uid, gid)) < 0) {
		snprintf(msg, len, "giving %s to uid %u: %s", vdir, (unsigned)uid, strerror(-r));
		return r;
	}
	snprintf(msg, len, "%s", vdir);
	return 0;
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
