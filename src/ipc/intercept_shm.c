/* intercept_shm.c — shmat of a krg process served on its node (docs/dsm.md,
 * "Node-local segments"): krgd keeps one memfd per System V segment
 * attached on this node; every attacher here maps that same memfd, so the
 * segment is coherent on this node as the kernel's would be. An attach
 * while the segment is attached on another node is refused until the DSM
 * serves cross-node pages: two node-local copies would silently diverge. */
#include <errno.h>
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

int ishm_get(struct ishm_seg **list, int32_t id, int32_t cpid, uint64_t size, struct ishm_seg **out)
{
	struct ishm_seg *s = ishm_find(list, id, cpid, size);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->fd = memfd_create("krg-sysv-shm", MFD_CLOEXEC);
		if (s->fd < 0 || ftruncate(s->fd, (off_t)size) < 0) {
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

int ishm_att_add(struct ishm_att **list, pid_t tgid, uint64_t addr, uint64_t size, int32_t id)
{
	struct ishm_att *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct ishm_att){ *list, tgid, addr, size, id };
	*list = a;
	return 0;
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
