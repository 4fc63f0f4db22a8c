/* exec_util.c — pure helpers of the exec service (see exec-int.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "proc/exec/exec-int.h"

char exec_parse_stat_state(const char *stat)
{
	/* "pid (comm) S ...": comm may hold anything, the last ')' ends it. */
	const char *r = strrchr(stat, ')');
	if (!r || r[1] != ' ' || !r[2])
		return 0;
	return r[2];
}

void exec_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **exec_path_candidates(const char *argv0, const char *path)
{
	size_t n = 1;
	if (!strchr(argv0, '/')) {
		if (!path)
			path = "/usr/local/bin:/usr/bin:/bin";
		for (const char *p = path; *p; p++)
			n += *p == ':';
		n++;
	}
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	if (strchr(argv0, '/')) {
		v[0] = strdup(argv0);
		if (!v[0]) {
			free(v);
			return NULL;
		}
		return v;
	}
	size_t i = 0;
	const char *p = path;
	for (;;) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		char *c = malloc(dl + strlen(argv0) + 2);
		if (!c) {
			exec_strv_free(v);
			return NULL;
		}
		if (dl == 0)
			strcpy(c, argv0);
		else {
			memcpy(c, p, dl);
			c[dl] = '/';
			strcpy(c + dl + 1, argv0);
		}
		v[i++] = c;
		if (!end)
			break;
		p = end + 1;
	}
	return v;
}

const char *exec_env_get(char *const *env, size_t n, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(env[i], name, l) && env[i][l] == '=')
			return env[i] + l + 1;
	return NULL;
}

int exec_shell_status(bool signaled, int v)
{
	if (signaled)
		return 128 + (v & 127);
	return v & 255;
}
