/* show.c — krg image show: decode every part, for people or as JSON.
 * Loading verifies frames, checksums and bounds exactly as restart does,
 * so a damaged image gets the same one error here. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include "ckpt/ckpt-int.h"
#include "lib/json.h"
#include "proto/ipc.pb-c.h"

static void prot_str(uint32_t prot, uint32_t flags, char out[5])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = flags & MAP_SHARED ? 's' : 'p';
	out[4] = 0;
}

static uint64_t saved_pages(const Krg__Ckpt__Vma *v)
{
	uint64_t n = 0;
	for (size_t j = 0; j < v->n_runs; j++)
		n += v->runs[j]->npages;
	return n;
}

/* The application's processes, with their fds. */
static void json_procs(struct krg_json *j, const struct ckpt_image *img)
{
	krg_json_begin_array(j, "processes");
	for (size_t i = 0; i < img->n_procs; i++) {
		const struct ckpt_proc_image *p = &img->procs[i];
		krg_json_begin_object(j, NULL);
		krg_json_int(j, "pid", p->info->pid);
		krg_json_int(j, "ppid", p->info->ppid);
		krg_json_int(j, "pgid", p->info->pgid);
		krg_json_int(j, "sid", p->info->sid);
		krg_json_bool(j, "zombie", p->info->zombie);
		if (p->info->zombie)
			krg_json_int(j, "exit_status", p->info->exit_status);
		else {
			krg_json_string(j, "comm", p->core->comm);
			krg_json_uint(j, "threads", p->core->n_threads);
			krg_json_bool(j, "leader_exited", p->core->leader_exited);
			krg_json_uint(j, "pages_bytes", p->mm->pages_size);
			krg_json_begin_array(j, "fds");
			for (size_t k = 0; k < p->files->n_fds; k++) {
				const Krg__Ckpt__Fd *f = p->files->fds[k];
				krg_json_begin_object(j, NULL);
				krg_json_int(j, "fd", f->fd);
				krg_json_string(j, "kind", f->kind);
				if (f->has_share_pid) {
					krg_json_int(j, "share_pid", f->share_pid);
					krg_json_int(j, "share_fd", f->share_fd);
				}
				if (f->has_peer_pid)
					krg_json_int(j, "peer_pid", f->peer_pid);
				if (f->has_peer)
					krg_json_int(j, "peer", f->peer);
				krg_json_end_object(j);
			}
			krg_json_end_array(j);
		}
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
}

/* The root's task: ids, threads, signal actions, limits. */
static void json_core(struct krg_json *j, const struct ckpt_image *img)
{
	char hex[17];
	const Krg__Ckpt__Core *c = img->procs[0].core;
	krg_json_begin_object(j, "core");
	krg_json_int(j, "pid", c->pid);
	krg_json_string(j, "comm", c->comm);
	krg_json_string(j, "cwd", c->cwd);
	krg_json_bool(j, "cwd_deleted", c->cwd_deleted != NULL);
	krg_json_uint(j, "umask", c->umask);
	if (c->n_uids == 3)
		krg_json_uint(j, "uid", c->uids[0]);
	if (c->n_gids == 3)
		krg_json_uint(j, "gid", c->gids[0]);
	krg_json_begin_array(j, "threads");
	for (size_t i = 0; i < c->n_threads; i++) {
		const Krg__Ckpt__ThreadCore *t = c->threads[i];
		krg_json_begin_object(j, NULL);
		krg_json_int(j, "tid", t->tid);
		krg_json_uint(j, "rip", t->regs->rip);
		krg_json_uint(j, "rsp", t->regs->rsp);
		krg_json_uint(j, "fs_base", t->regs->fs_base);
		krg_json_int(j, "orig_rax", (int64_t)t->regs->orig_rax);
		krg_json_int(j, "rax", (int64_t)t->regs->rax);
		snprintf(hex, sizeof(hex), "%016" PRIx64, t->sigmask);
		krg_json_string(j, "sigmask", hex);
		krg_json_uint(j, "xsave_bytes", t->xsave.len);
		krg_json_uint(j, "rseq", t->rseq_addr);
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
	krg_json_begin_array(j, "sigactions");
	for (size_t i = 0; i < c->n_sigactions; i++) {
		const Krg__Ckpt__SigAction *s = c->sigactions[i];
		if (!s->handler)
			continue;  /* SIG_DFL: the default, not listed */
		krg_json_begin_object(j, NULL);
		krg_json_uint(j, "signo", s->signo);
		krg_json_uint(j, "handler", s->handler);
		krg_json_uint(j, "flags", s->flags);
		krg_json_uint(j, "mask", s->mask);
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
	krg_json_begin_array(j, "rlimits");
	for (size_t i = 0; i < c->n_rlimits; i++) {
		krg_json_begin_object(j, NULL);
		krg_json_uint(j, "resource", c->rlimits[i]->resource);
		krg_json_uint(j, "cur", c->rlimits[i]->cur);
		krg_json_uint(j, "max", c->rlimits[i]->max);
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
	krg_json_end_object(j);
}

/* The root's address space. */
static void json_mm(struct krg_json *j, const struct ckpt_image *img)
{
	const Krg__Ckpt__Mm *mm = img->procs[0].mm;
	krg_json_begin_object(j, "mm");
	krg_json_uint(j, "start_brk", mm->fields->start_brk);
	krg_json_uint(j, "brk", mm->fields->brk);
	krg_json_string(j, "exe", mm->exe ? mm->exe : "");
	krg_json_uint(j, "pages_bytes", mm->pages_size);
	krg_json_begin_array(j, "vmas");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		char p[5];
		prot_str(v->prot, v->flags, p);
		krg_json_begin_object(j, NULL);
		krg_json_uint(j, "start", v->start);
		krg_json_uint(j, "end", v->end);
		krg_json_string(j, "prot", p);
		krg_json_string(j, "kind", ckpt_vma_kind_name(v->kind));
		if (v->path)
			krg_json_string(j, "path", v->path);
		if (v->has_pgoff)
			krg_json_uint(j, "pgoff", v->pgoff);
		krg_json_bool(j, "growsdown", v->flags & MAP_GROWSDOWN);
		krg_json_uint(j, "saved_pages", saved_pages(v));
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
	krg_json_end_object(j);
}

/* The root's fds in detail. */
static void json_fds(struct krg_json *j, const struct ckpt_image *img)
{
	krg_json_begin_array(j, "fds");
	for (size_t i = 0; i < img->procs[0].files->n_fds; i++) {
		const Krg__Ckpt__Fd *f = img->procs[0].files->fds[i];
		krg_json_begin_object(j, NULL);
		krg_json_int(j, "fd", f->fd);
		krg_json_string(j, "kind", f->kind);
		krg_json_string(j, "path", f->path ? f->path : "");
		krg_json_uint(j, "flags", f->flags);
		krg_json_uint(j, "pos", f->pos);
		if (f->has_dup_of)
			krg_json_int(j, "dup_of", f->dup_of);
		if (f->has_peer)
			krg_json_int(j, "peer", f->peer);
		if (f->has_data)
			krg_json_uint(j, "data_bytes", f->data.len);
		if (f->n_packets)
			krg_json_uint(j, "datagrams", f->n_packets);
		if (f->has_counter)
			krg_json_uint(j, "counter", f->counter);
		krg_json_end_object(j);
	}
	krg_json_end_array(j);
}

static void json_sysv(struct krg_json *j, const Krg__Ipc__Saved *sv);

static void show_json(const struct ckpt_image *img, const Krg__Ipc__Saved *sv, FILE *out)
{
	struct krg_json j;
	krg_json_init(&j, out);
	krg_json_begin_object(&j, NULL);
	krg_json_begin_object(&j, "inventory");
	krg_json_uint(&j, "image_version", img->inv->image_version);
	krg_json_string(&j, "arch", "x86_64");
	krg_json_int(&j, "root_pid", img->inv->root_pid);
	krg_json_uint(&j, "time_ns", img->inv->time_ns);
	krg_json_string(&j, "kernel", img->inv->kernel ? img->inv->kernel : "");
	if (img->inv->description)
		krg_json_string(&j, "description", img->inv->description);
	if (img->inv->parent)
		krg_json_string(&j, "parent", img->inv->parent);
	krg_json_uint(&j, "xsave_size", img->inv->xsave_size);
	krg_json_bool(&j, "killed", img->inv->killed);
	krg_json_end_object(&j);

	/* The application's processes, then the root's parts in detail. */
	json_procs(&j, img);
	json_core(&j, img);
	json_mm(&j, img);
	json_fds(&j, img);
	json_sysv(&j, sv);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void show_proc_text(const struct ckpt_proc_image *img, FILE *out);

static void show_text(const struct ckpt_image *img, FILE *out)
{
	const Krg__Ckpt__Inventory *inv = img->inv;
	time_t secs = (time_t)(inv->time_ns / 1000000000ULL);
	char when[64];
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime(&secs));
	fprintf(out, "image %s: format v%u, x86-64, taken %s on kernel %s%s\n", img->dir, inv->image_version, when,
		inv->kernel ? inv->kernel : "?", inv->killed ? " (original killed)" : "");
	if (inv->description)
		fprintf(out, "description: %s\n", inv->description);
	if (inv->parent)
		fprintf(out, "incremental: the pages not written since come from %s (next to it)\n", inv->parent);
	fprintf(out, "%zu process%s\n", img->n_procs, img->n_procs > 1 ? "es" : "");
	for (size_t i = 0; i < img->n_procs; i++)
		show_proc_text(&img->procs[i], out);
}

static void show_proc_text(const struct ckpt_proc_image *img, FILE *out)
{
	const Krg__Ckpt__Process *pi = img->info;
	if (pi->zombie) {
		int st = pi->exit_status;
		fprintf(out, "\nprocess %d: zombie (parent %d), %s %d\n", pi->pid, pi->ppid, WIFSIGNALED(st) ? "killed by signal" : "exit status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		return;
	}
	const Krg__Ckpt__Core *c = img->core;
	fprintf(out, "\nprocess %d (%s), parent %s%d, group %d, session %d, uid %u gid %u, cwd %s%s, umask %04o, %zu thread%s\n", c->pid, c->comm,
		pi->ppid ? "" : "outside, was ", pi->ppid ? pi->ppid : c->ppid, pi->pgid, pi->sid, c->n_uids ? c->uids[0] : 0, c->n_gids ? c->gids[0] : 0,
		c->cwd, c->cwd_deleted ? " (deleted)" : "", c->umask, c->n_threads, c->n_threads > 1 ? "s" : "");
	if (c->leader_exited)
		fprintf(out, "  the leader %d had exited (a zombie thread); these threads ran on\n", c->pid);
	for (size_t i = 0; i < c->n_threads; i++) {
		const Krg__Ckpt__ThreadCore *t = c->threads[i];
		fprintf(out, "  thread %d: rip %#" PRIx64 " rsp %#" PRIx64 " fs_base %#" PRIx64 "%s, blocked %#" PRIx64 ", xsave %zu bytes\n", t->tid,
			t->regs->rip, t->regs->rsp, t->regs->fs_base, (int64_t)t->regs->orig_rax >= 0 ? " (in a syscall)" : "", t->sigmask, t->xsave.len);
	}
	fprintf(out, "  signal handlers:");
	int shown = 0;
	for (size_t i = 0; i < c->n_sigactions; i++) {
		const Krg__Ckpt__SigAction *s = c->sigactions[i];
		if (!s->handler)
			continue;
		const char *n = sigabbrev_np((int)s->signo);
		if (s->handler == 1)
			fprintf(out, " %s%s=ignored", n ? "SIG" : "", n ? n : "RT");
		else
			fprintf(out, " %s%s=%#" PRIx64, n ? "SIG" : "sig", n ? n : "", s->handler);
		shown++;
	}
	fprintf(out, "%s\n", shown ? "" : " all default");

	const Krg__Ckpt__Mm *mm = img->mm;
	fprintf(out, "  memory: %zu VMAs, %" PRIu64 " KiB saved, brk %#" PRIx64 "-%#" PRIx64 ", exe %s\n", mm->n_vmas, mm->pages_size / 1024,
		mm->fields->start_brk, mm->fields->brk, mm->exe ? mm->exe : "?");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		char p[5];
		prot_str(v->prot, v->flags, p);
		fprintf(out, "    %012" PRIx64 "-%012" PRIx64 " %s %-8s %6" PRIu64 " pages saved  %s\n", v->start, v->end, p, ckpt_vma_kind_name(v->kind),
			saved_pages(v), v->path ? v->path : v->name ? v->name : "");
	}
	fprintf(out, "  files: %zu\n", img->files->n_fds);
	for (size_t i = 0; i < img->files->n_fds; i++) {
		const Krg__Ckpt__Fd *f = img->files->fds[i];
		fprintf(out, "    fd %-3d %-7s flags %#o pos %" PRIu64 "  %s", f->fd, f->kind, f->flags, f->pos, f->path ? f->path : "");
		if (f->has_dup_of)
			fprintf(out, " (dup of fd %d)", f->dup_of);
		if (f->has_ino && strcmp(f->kind, "deleted") && strcmp(f->kind, "memfd"))
			fprintf(out, " [%" PRIu64 "]", f->ino);
		if (f->has_share_pid)
			fprintf(out, " (shared with process %d fd %d)", f->share_pid, f->share_fd);
		if (f->has_peer && f->has_peer_pid)
			fprintf(out, " other end: process %d fd %d", f->peer_pid, f->peer);
		else if (f->has_peer)
			fprintf(out, " other end fd %d", f->peer);
		if (f->has_data)
			fprintf(out, " %zu bytes %s", f->data.len, strcmp(f->kind, "deleted") && strcmp(f->kind, "memfd") ? "queued" : "of content");
		if (f->n_packets)
			fprintf(out, " %zu datagrams queued", f->n_packets);
		if (f->has_counter)
			fprintf(out, " count %" PRIu64 "%s", f->counter, f->semaphore ? " (semaphore)" : "");
		if (f->has_seals && f->seals)
			fprintf(out, " seals %#x", f->seals);
		if (f->has_mode && f->has_uid && f->has_gid)
			fprintf(out, " mode %04o owner %u:%u", f->mode, f->uid, f->gid);
		fputc('\n', out);
	}
}

/* sysvipc.img: the System V queues and semaphore sets the application
 * created, recreated under their ids at its restart (docs/ipc.md). */
static size_t msg_bytes(const Krg__Ipc__Object *o)
{
	size_t n = 0;
	for (size_t i = 0; i < o->n_msgs; i++)
		n += o->msgs[i]->text.len;
	return n;
}

static void json_sysv(struct krg_json *j, const Krg__Ipc__Saved *sv)
{
	krg_json_begin_array(j, "sysv");
	for (size_t i = 0; sv && i < sv->n_objects; i++) {
		Krg__Ipc__Object *o = krg__ipc__object__unpack(NULL, sv->objects[i].len, sv->objects[i].data);
		if (!o)
			continue; /* validated when read: cannot happen */
		krg_json_begin_object(j, NULL);
		krg_json_string(j, "kind", o->kind == 2 ? "sem" : "msg");
		krg_json_int(j, "id", o->id);
		krg_json_int(j, "key", o->perm->key);
		krg_json_uint(j, "uid", o->perm->uid);
		krg_json_uint(j, "gid", o->perm->gid);
		krg_json_uint(j, "cuid", o->perm->cuid);
		krg_json_uint(j, "cgid", o->perm->cgid);
		krg_json_uint(j, "mode", o->perm->mode & 0777);
		if (o->kind == 2) {
			krg_json_begin_array(j, "values");
			for (size_t k = 0; k < o->n_semval; k++)
				krg_json_uint(j, NULL, o->semval[k]);
			krg_json_end_array(j);
			krg_json_uint(j, "undo_records", o->n_undos);
		} else {
			krg_json_uint(j, "messages", o->n_msgs);
			krg_json_uint(j, "bytes", msg_bytes(o));
			krg_json_uint(j, "qbytes", o->qbytes);
		}
		krg_json_end_object(j);
		krg__ipc__object__free_unpacked(o, NULL);
	}
	krg_json_end_array(j);
}

static void text_sysv(FILE *out, const Krg__Ipc__Saved *sv)
{
	if (!sv)
		return; /* none saved (--ignore-unsupported, or an image from before) */
	size_t n = sv->n_objects;
	fprintf(out, "\n%zu System V object%s (recreated under the same ids at restart)\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		Krg__Ipc__Object *o = krg__ipc__object__unpack(NULL, sv->objects[i].len, sv->objects[i].data);
		if (!o)
			continue;
		fprintf(out, "  %s id %d key 0x%08x owner %u:%u mode %04o: ", o->kind == 2 ? "semaphore set" : "message queue",
			o->id, (uint32_t)o->perm->key, o->perm->uid, o->perm->gid, o->perm->mode & 0777);
		if (o->kind == 2) {
			fprintf(out, "%zu semaphore%s, values", o->n_semval, o->n_semval == 1 ? "" : "s");
			for (size_t k = 0; k < o->n_semval && k < 16; k++)
				fprintf(out, " %u", o->semval[k]);
			fprintf(out, "%s, %zu undo record%s\n", o->n_semval > 16 ? " ..." : "", o->n_undos,
				o->n_undos == 1 ? "" : "s");
		} else {
			fprintf(out, "%zu message%s, %zu bytes\n", o->n_msgs, o->n_msgs == 1 ? "" : "s", msg_bytes(o));
		}
		krg__ipc__object__free_unpacked(o, NULL);
	}
}

int ckpt_image_show(const char *dir, bool json, FILE *out, struct ckpt_error *err)
{
	struct ckpt_image img;
	int r = ckpt_image_load(dir, true, &img, err);
	if (r < 0)
		return r;
	/* Checked as a restart checks it: a damaged part fails here too. */
	uint8_t *saved = NULL;
	size_t len = 0, n = 0;
	r = ckpt_sysv_read(dir, &saved, &len, &n, err);
	if (r < 0 && r != -ENOENT) {
		ckpt_image_free(&img);
		return r;
	}
	Krg__Ipc__Saved *sv = saved ? krg__ipc__saved__unpack(NULL, len, saved) : NULL;
	free(saved);
	if (json) {
		show_json(&img, sv, out);
	} else {
		show_text(&img, out);
		text_sysv(out, sv);
	}
	if (sv)
		krg__ipc__saved__free_unpacked(sv, NULL);
	ckpt_image_free(&img);
	return 0;
}
