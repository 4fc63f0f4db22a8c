/* intercept_shm.c — the System V segments attached on this node and the
 * attaches krgd made (docs/dsm.md, "shmat through krgd"): one object per
 * segment (the DSM's memfd of it, or without the DSM a memfd of this node
 * alone); every attacher here maps that same object. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ipc/intercept-int.h"


struct ishm_seg *ishm_find(struct ishm_seg **list, int32_t id, int32_t cpid, uint64_t size)
{
	for (struct ishm_seg **p = list; *p; p = &(*p)->next) {
		struct ishm_seg *s = *p;
		if (s->id != id)
			continue;
		if (s->cpid == cpid && s->size == size)
			return s;
		/* The id names a newer segment: the old pages are unreachable. */
		*p = s->next;
		close(s->fd);
		free(s);
		break;
	}
	return NULL;
}

uint64_t ishm_name(int32_t id, int32_t cpid)
{
	return (uint64_t)(uint32_t)id << 32 | (uint32_t)cpid;
}

int ishm_get(struct ishm_seg **list, int32_t id, int32_t cpid, uint64_t size, int src_fd, struct ishm_seg **out)
{
	struct ishm_seg *s = ishm_find(list, id, cpid, size);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->fd = src_fd >= 0 ? fcntl(src_fd, F_DUPFD_CLOEXEC, 3) : memfd_create("krg-sysv-shm", MFD_CLOEXEC);
		if (s->fd < 0 || (src_fd < 0 && ftruncate(s->fd, (off_t)size) < 0)) {
			int e = errno;
			if (s->fd >= 0)
				close(s->fd);
			free(s);
			return -e;
		}
		s->id = id;
		s->cpid = cpid;
		s->size = size;
		s->next = *list;
		*list = s;
	}
	*out = s;
	return 0;
}

void ishm_free(struct ishm_seg **list)
{
	while (*list) {
		struct ishm_seg *s = *list;
		*list = s->next;
		close(s->fd);
		free(s);
	}
}

int ishm_att_add(struct ishm_att **list, const struct ishm_att *src)
{
	struct ishm_att *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = *src;
	a->who.cred.groups = NULL;
	a->who.cred.ngroups = 0;
	a->next = *list;
	*list = a;
	return 0;
}

struct ishm_att *ishm_att_take_any(struct ishm_att **list, pid_t tgid)
{
	for (struct ishm_att **p = list; *p; p = &(*p)->next)
		if ((*p)->tgid == tgid) {
			struct ishm_att *a = *p;
			*p = a->next;
			return a;
		}
	return NULL;
}

struct ishm_att *ishm_att_take(struct ishm_att **list, pid_t tgid, uint64_t addr)
{
	for (struct ishm_att **p = list; *p; p = &(*p)->next)
		if ((*p)->tgid == tgid && (*p)->addr == addr) {
			struct ishm_att *a = *p;
			*p = a->next;
			return a;
		}
	return NULL;
}

void ishm_att_free(struct ishm_att **list)
{
	while (*list) {
		struct ishm_att *a = *list;
		*list = a->next;
		free(a);
	}
}
