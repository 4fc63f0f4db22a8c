/* submounts.c — mounts under a forwarded path (submounts.h). */
#include "fsview/submounts.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

static int add(struct fsv_subs *s, const char *rel, const char *full)
{
	/* Inside one already kept: it comes along (the bind is recursive). */
	for (size_t i = 0; i < s->n; i++) {
		size_t l = strlen(s->v[i].rel);
		if (!strncmp(rel, s->v[i].rel, l) && (rel[l] == '/' || rel[l] == 0))
			return 0;
	}
	struct fsv_sub *nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	s->v = nv;
	struct fsv_sub *x = &s->v[s->n];
	x->fd = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (x->fd < 0 || fstat(x->fd, &x->st) < 0 || !(x->rel = strdup(rel))) {
		if (x->fd >= 0)
			close(x->fd);
		return 0; /* not a directory, or gone: nothing to keep */
	}
	s->n++;
	return 0;
}

int fsv_subs_find(const char *path, struct fsv_subs *out)
{
	memset(out, 0, sizeof(*out));
	if (stat(path, &out->parent) < 0)
		return -errno;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	size_t pl = strlen(path);
	char line[8192];
	/* Parents are listed before their children: the outermost come first. */
	while (fgets(line, sizeof(line), f)) {
		/* A tmpfs under the path (/run/user/UID) is node-local data
		 * like the path itself: forwarded with it, not kept. */
		const char *sep = strstr(line, " - ");
		if (!sep || !strncmp(sep + 3, "tmpfs ", 6) || !strncmp(sep + 3, "ramfs ", 6))
			continue;
		char *save, *tok = strtok_r(line, " ", &save);
		for (int i = 1; tok && i < 5; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok)
			continue;
		unescape(tok);
		if (strncmp(tok, path, pl) || tok[pl] != '/' || !tok[pl + 1])
			continue;
		if (add(out, tok + pl, tok) < 0)
			break;
	}
	fclose(f);
	return 0;
}

int fsv_subs_stat(const struct fsv_subs *s, const char *rel, struct stat *st)
{
	size_t l = strlen(rel);
	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(rel, s->v[i].rel)) {
			*st = s->v[i].st;
			return 1;
		}
		if (!strncmp(s->v[i].rel, rel, l) && s->v[i].rel[l] == '/') {
			*st = s->parent;
			return 1;
		}
	}
	return 0;
}

void fsv_subs_bind(const char *path, struct fsv_subs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		char src[64], dst[PATH_MAX];
		snprintf(src, sizeof(src), "/proc/self/fd/%d", s->v[i].fd);
		snprintf(dst, sizeof(dst), "%s%s", path, s->v[i].rel);
		if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			fprintf(stderr, "krg-fsview: keeping the node's %s: %s\n", dst, strerror(errno));
		close(s->v[i].fd);
		s->v[i].fd = -1;
	}
}
