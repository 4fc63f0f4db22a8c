/* sysv.c — the sysvipc.img part of an image: the cluster's System V
 * message queues and semaphore sets the application created (docs/ipc.md,
 * "Checkpoint, restart, migration"). krgd's checkpoint service gets them
 * from their homes (each a packed krg.ipc.Object, as KDDM hands one over)
 * and the dump writes them as one krg.ipc.Saved; a restart through krgd
 * reads them back and has them recreated under their ids before the
 * processes. This file only frames and checks the bytes: what an object
 * means is the IPC service's (ipc_service_home.c validates each again
 * when it imports it). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ckpt-int.h"
#include "ckpt.h"
#include "proto/ipc.pb-c.h"

#define SYSV_NAME "sysvipc.img"
#define SYSV_MAX_OBJS 65536

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int ckpt_sysv_validate(const uint8_t *p, size_t len, size_t *n_objs, struct ckpt_error *err)
{
	Krg__Ipc__Saved *s = krg__ipc__saved__unpack(NULL, len, p);
	if (!s)
		return ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": undecodable");
	int r = 0;
	uint64_t *keys = calloc(s->n_objects + 1, sizeof(*keys));
	if (!keys)
		r = ckpt_fail(err, ENOMEM, "out of memory");
	else if (s->n_objects > SYSV_MAX_OBJS)
		r = ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": %zu objects (at most %d)", s->n_objects, SYSV_MAX_OBJS);
	for (size_t i = 0; r == 0 && i < s->n_objects; i++) {
		Krg__Ipc__Object *o = krg__ipc__object__unpack(NULL, s->objects[i].len, s->objects[i].data);
		if (!o) {
			r = ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": object %zu undecodable", i);
			break;
		}
		/* kind 1: a queue, 2: a semaphore set (ipc_engine.h). */
		if ((o->kind != 1 && o->kind != 2) || o->id < 0 || (o->kind == 1) != (o->n_semval == 0) ||
		    o->n_semval != o->n_sempid || o->n_semval > 65536 || (o->kind == 2 && o->n_msgs))
			r = ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": object %zu (id %d) is inconsistent", i, o->id);
		for (size_t j = 0; r == 0 && j < o->n_undos; j++)
			if (o->undos[j]->n_semadj != o->n_semval)
				r = ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": object %zu (id %d): undo record %zu has %zu values for %zu semaphores",
					      i, o->id, j, o->undos[j]->n_semadj, o->n_semval);
		if (r == 0)
			keys[i] = (uint64_t)o->kind << 32 | (uint32_t)o->id;
		krg__ipc__object__free_unpacked(o, NULL);
	}
	/* Two objects of one kind under one id cannot both come back. */
	if (r == 0)
		qsort(keys, s->n_objects, sizeof(*keys), cmp_u64);
	for (size_t i = 1; r == 0 && i < s->n_objects; i++)
		if (keys[i] == keys[i - 1])
			r = ckpt_fail(err, EBADMSG, "image file " SYSV_NAME ": id %d twice", (int32_t)(uint32_t)keys[i]);
	free(keys);
	if (r == 0 && n_objs)
		*n_objs = s->n_objects;
	krg__ipc__saved__free_unpacked(s, NULL);
	return r;
}

int ckpt_sysv_write(int dirfd, const uint8_t *saved, size_t len, struct ckpt_error *err)
{
	struct ckpt_writer *w;
	int r = ckpt_writer_open(dirfd, SYSV_NAME, CKPT_PART_SYSV, &w, err);
	if (r < 0)
		return r;
	if ((r = ckpt_writer_write(w, saved, len, err)) < 0) {
		ckpt_writer_abort(w);
		return r;
	}
	return ckpt_writer_commit(w, err);
}

int ckpt_sysv_read(const char *dir, uint8_t **out, size_t *len, size_t *n_objs, struct ckpt_error *err)
{
	*out = NULL;
	*len = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ckpt_fail(err, errno, "image %s: %s", dir, strerror(errno));
	if (faccessat(dfd, SYSV_NAME, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		close(dfd);
		return -ENOENT;
	}
	struct ckpt_blob b = { 0 };
	int r = ckpt_read_part(dfd, SYSV_NAME, CKPT_PART_SYSV, &b, err);
	close(dfd);
	if (r < 0)
		return r;
	if ((r = ckpt_sysv_validate(b.data, b.len, n_objs, err)) == 0) {
		*out = malloc(b.len ? b.len : 1);
		if (!*out)
			r = ckpt_fail(err, ENOMEM, "out of memory");
		else
			memcpy(*out, b.data, b.len), *len = b.len;
	}
	ckpt_blob_free(&b);
	return r;
}
