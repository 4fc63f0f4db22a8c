/* sharedmem.c — refuse to migrate a process whose shared memory another
 * process of this node also maps (issue 14 item 14). A System V segment
 * of the DSM is not such a mapping: it is shared across nodes already,
 * and its attachment follows the process (issue 17, docs/dsm.md).
 *
 * A MAP_SHARED anonymous region or a memfd is one object in the kernel:
 * a parent and the children it forked, or processes that passed a memfd,
 * see each other's writes. Migration moves one process; its image would
 * carry a copy of the object, and from then on the migrant and the
 * processes left here would write two different objects without knowing.
 * Until the cluster has shared memory that stays coherent across nodes,
 * such a migration is refused, before the process is touched (no freeze,
 * no pre-copy). A process that is the only one mapping its object
 * migrates as before. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/macro.h"
#include "proc/migrate/worker.h"
#include "proc/procid.h"

/* One shared object the migrant maps (its first VMA of it). */
struct shobj {
	unsigned maj, min;
	unsigned long ino;
	unsigned long start, end;
	char what[160];  /* "MAP_SHARED anonymous", "memfd NAME", "POSIX shm PATH",
	                  * or a System V segment of the DSM */
	bool dsm;        /* a segment attached through krgd (shared across nodes) */
};

/* A maps line; 1 if it maps a shared memory object (dev/ino filled, and
 * what it is in o->what), 0 if not, shared_only: only MAP_SHARED ones. */
static int parse_line(const char *line, bool shared_only, struct shobj *o)
{
	char perms[8];
	int pos = 0;
	o->dsm = false;
	if (sscanf(line, "%lx-%lx %7s %*x %x:%x %lu %n", &o->start, &o->end, perms, &o->maj, &o->min, &o->ino, &pos) < 6 || !pos)
		return 0;
	if (!o->ino || (shared_only && perms[3] != 's'))
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s", line + pos);
	path[strcspn(path, "\n")] = 0;
	size_t pl = strlen(path);
	static const char del[] = " (deleted)";
	bool deleted = pl > sizeof(del) - 1 && !strcmp(path + pl - (sizeof(del) - 1), del);
	if (deleted)
		path[pl - (sizeof(del) - 1)] = 0;
	if ((deleted && !strcmp(path, "/dev/zero")) || !strncmp(path, "[anon_shmem:", 12)) {
		snprintf(o->what, sizeof(o->what), "MAP_SHARED anonymous");
		return 1;
	}
	unsigned long long seg;
	if (deleted && sscanf(path, "/memfd:krg-dsm:%llx", &seg) == 1) {
		/* The node's object of a System V segment of the DSM
		 * (src/dsm/dsm_node.c names it by the segment: id << 32 | creator). */
		snprintf(o->what, sizeof(o->what), "System V segment %d, shared across nodes", (int)(seg >> 32));
		o->dsm = true;
		return 1;
	}
	if (deleted && !strncmp(path, "/memfd:", 7)) {
		snprintf(o->what, sizeof(o->what), "memfd %.140s", path + 7);
		return 1;
	}
	/* POSIX shm (shm_open): a file of the node's own /dev/shm, which the
	 * target node does not share. */
	if (!strncmp(path, "/dev/shm/", 9)) {
		snprintf(o->what, sizeof(o->what), "POSIX shm %.140s", path);
		return 1;
	}
	return 0;
}

/* Does process other map one of objs? Its index, or -1. */
static int maps_one_of(pid_t other, const struct shobj *objs, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)other);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -1;  /* gone, or a kernel thread */
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		struct shobj o;
		/* Any mapping of it, even private: a MAP_PRIVATE view of a
		 * memfd reads what the sharers write until it writes itself. */
		if (!parse_line(line, false, &o))
			continue;
		for (size_t i = 0; i < n; i++)
			if (objs[i].ino == o.ino && objs[i].maj == o.maj && objs[i].min == o.min)
				return (int)i;
	}
	return -1;
}

int mig_shared_mem_check(pid_t pid, uint32_t id, uint32_t node, char *err, size_t errlen)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return 0;  /* gone: the freeze says so */
	struct shobj *objs = NULL;
	size_t n = 0;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		struct shobj o;
		if (!parse_line(line, true, &o))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = objs[i].ino == o.ino && objs[i].maj == o.maj && objs[i].min == o.min;
		if (dup)
			continue;
		if (o.dsm)
			/* Its pages are kept coherent across nodes by the DSM,
			 * and its attachment follows the migration (the dump
			 * saves it as such, the target attaches it again:
			 * docs/dsm.md, "Migration of an attached process"), whoever
			 * else attached it. */
			continue;
		struct shobj *no = realloc(objs, (n + 1) * sizeof(*objs));
		if (!no)
			abort();
		objs = no;
		objs[n++] = o;
	}
	if (!n)
		return 0;
	int r = 0;
	DIR *d = opendir("/proc");
	for (struct dirent *e; d && !r && (e = readdir(d));) {
		char *end;
		long other = strtol(e->d_name, &end, 10);
		if (*end || other <= 0 || other == pid)
			continue;
		int i = maps_one_of((pid_t)other, objs, n);
		if (i < 0)
			continue;
		snprintf(err, errlen, "process %" PRIu32 ": mapping %lx-%lx (%s) is shared with process %" PRIu32 ", which stays on node %" PRIu32,
			 id, objs[i].start, objs[i].end, objs[i].what, krg_procid_make(node, (uint32_t)other), node);
		r = -EBUSY;
	}
	if (d)
		closedir(d);
	free(objs);
	return r;
}
