/* Unit tests for the image validators (issue 15 item 8): what a restart
 * believes of an image before it acts on it. ckpt_files_validate (one
 * process's fd table), ckpt_files_validate_app (fds shared or paired
 * across the processes of an application), ckpt_mm_validate (VMAs, page
 * runs, per-VMA checksums and the pages frame sum, on a real pages file
 * written by the image writer) and ckpt_sysv_validate (the saved System V
 * objects). Each malformation is one a damaged or hostile image could
 * carry; the validator must refuse it with EBADMSG (EPROTO for an fd kind
 * this krg does not know) and a line saying what is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>
#include "ckpt/ckpt.h"
#include "ckpt/ckpt-int.h"
#include "proto/ipc.pb-c.h"

/* ---- fd tables ---- */

#define MAX_FDS 8

struct table {
	Krg__Ckpt__Files f;
	Krg__Ckpt__Fd fd[MAX_FDS], *fdp[MAX_FDS];
};

static Krg__Ckpt__Fd *add_fd(struct table *t, int fd, const char *kind, const char *path)
{
	if (!t->f.fds)
		krg__ckpt__files__init(&t->f);
	Krg__Ckpt__Fd *e = &t->fd[t->f.n_fds];
	krg__ckpt__fd__init(e);
	e->fd = fd;
	e->kind = (char *)kind;
	e->path = (char *)path;
	t->fdp[t->f.n_fds++] = e;
	t->f.fds = t->fdp;
	return e;
}

/* A good table: a file, a dup of it, a pipe's two ends naming each other. */
static void good_table(struct table *t, int pid)
{
	memset(t, 0, sizeof(*t));
	add_fd(t, 0, "reg", "/etc/hostname");
	Krg__Ckpt__Fd *d = add_fd(t, 1, "reg", "/etc/hostname");
	d->has_dup_of = true, d->dup_of = 0;
	Krg__Ckpt__Fd *r = add_fd(t, 3, "pipe", NULL), *w = add_fd(t, 4, "pipe", NULL);
	r->has_peer = true, r->peer = 4;
	w->has_peer = true, w->peer = 3;
	t->f.pid = pid;
}

static int files_check(const struct table *t, const char *want)
{
	struct ckpt_error err = { 0 };
	int r = ckpt_files_validate(&t->f, &err);
	if (want) {
		if (r == 0)
			fail_msg("accepted, expected a refusal about '%s'", want);
		if (!strstr(err.msg, want))
			fail_msg("refusal '%s' does not say '%s'", err.msg, want);
	} else if (r != 0) {
		fail_msg("refused a good table: %s", err.msg);
	}
	return r;
}

static void files_good(void **state)
{
	struct table t;
	good_table(&t, 10);
	files_check(&t, NULL);
	/* An epoll watching fd 3, an inotify with ascending watches, a timer
	 * with its clock, a signalfd with its mask: all state named is there. */
	Krg__Ckpt__EpollTarget tg = KRG__CKPT__EPOLL_TARGET__INIT, *tgp = &tg;
	tg.fd = 3;
	Krg__Ckpt__Fd *ep = add_fd(&t, 5, "epoll", NULL);
	ep->n_targets = 1, ep->targets = &tgp;
	Krg__Ckpt__InotifyWatch w1 = KRG__CKPT__INOTIFY_WATCH__INIT, w2 = KRG__CKPT__INOTIFY_WATCH__INIT, *wp[] = { &w1, &w2 };
	w1.wd = 1, w1.path = "/tmp";
	w2.wd = 4, w2.path = "/etc";
	Krg__Ckpt__Fd *in = add_fd(&t, 6, "inotify", NULL);
	in->n_watches = 2, in->watches = wp;
	Krg__Ckpt__Fd *tf = add_fd(&t, 7, "timerfd", NULL);
	tf->has_clockid = tf->has_value_ns = tf->has_interval_ns = true;
	files_check(&t, NULL);
	/* Each piece of state broken in turn. */
	w2.wd = 1;
	files_check(&t, "out of order");
	w2.wd = 4, w2.path = "etc";
	files_check(&t, "absolute path");
	w2.path = "/etc";
	tg.fd = 9;
	files_check(&t, "not in the image");
	tg.fd = 5; /* itself */
	files_check(&t, "not in the image");
	tg.fd = 3;
	tf->has_interval_ns = false;
	files_check(&t, "lacks its clock");
	tf->has_interval_ns = true;
	Krg__Ckpt__Fd *sf = add_fd(&t, 8, "signalfd", NULL);
	files_check(&t, "lacks its signal mask");
	sf->has_sigmask = true;
	files_check(&t, NULL);
}

static void files_bad(void **state)
{
	struct table t;
	good_table(&t, 10);
	t.fd[0].fd = -1;
	files_check(&t, "out of range");
	good_table(&t, 10);
	t.fd[0].fd = (1 << 20) + 1;
	files_check(&t, "out of range");

	good_table(&t, 10);
	t.fd[2].kind = "quantum-socket";
	struct ckpt_error err = { 0 };
	assert_int_equal(ckpt_files_validate(&t.f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "quantum-socket"));

	good_table(&t, 10);
	t.fd[0].path = NULL;
	files_check(&t, "has no path");
	good_table(&t, 10);
	t.fd[0].path = "relative/name";
	files_check(&t, "has no path");

	good_table(&t, 10);
	t.fd[1].fd = 0;
	t.fd[1].has_dup_of = false;
	files_check(&t, "appears twice");

	good_table(&t, 10);
	t.fd[1].dup_of = 7; /* no such fd */
	files_check(&t, "comes nowhere before it");
	good_table(&t, 10);
	t.fd[1].dup_of = 3; /* a later fd */
	files_check(&t, "comes nowhere before it");

	good_table(&t, 10);
	t.fd[3].peer = 0; /* names the file, which names nothing */
	files_check(&t, "does not name it back");
	good_table(&t, 10);
	t.fd[2].peer = 3; /* itself */
	files_check(&t, "does not name it back");

	/* pipe-reopen must name an earlier pipe entry. */
	good_table(&t, 10);
	Krg__Ckpt__Fd *ro = add_fd(&t, 9, "pipe-reopen", NULL);
	ro->has_reopen_of = true, ro->reopen_of = 3;
	files_check(&t, NULL);
	ro->reopen_of = 0;
	files_check(&t, "no earlier pipe");
	ro->has_reopen_of = false;
	files_check(&t, "no earlier pipe");
}

/* Across processes: a shared open file description must come from an
 * earlier process (restored first), a pipe split over two processes must
 * name each other. */
static void files_app(void **state)
{
	struct table a, b;
	good_table(&a, 10);
	good_table(&b, 11);
	Krg__Ckpt__Files *v[] = { &a.f, &b.f };
	struct ckpt_error err = { 0 };
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), 0);

	Krg__Ckpt__Fd *s = add_fd(&b, 5, "reg", NULL);
	s->has_share_pid = true, s->share_pid = 10;
	s->has_share_fd = true, s->share_fd = 0;
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), 0);
	s->share_fd = 3; /* a pipe, not a reg */
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not restored before it"));
	s->share_fd = 0;
	/* The same sharing from the first process toward the second: the
	 * second is restored after it, so it cannot give the file. */
	Krg__Ckpt__Files *rev[] = { &b.f, &a.f };
	assert_int_equal(ckpt_files_validate_app(rev, 2, &err), -EBADMSG);

	/* A pipe whose ends are in two processes. */
	Krg__Ckpt__Fd *x = add_fd(&a, 20, "pipe", NULL), *y = add_fd(&b, 21, "pipe", NULL);
	x->has_peer = y->has_peer = x->has_peer_pid = y->has_peer_pid = true;
	x->peer = 21, x->peer_pid = 11;
	y->peer = 20, y->peer_pid = 10;
	memset(&err, 0, sizeof(err));
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), 0);
	y->peer = 3;
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "does not name it back"));
	y->peer = 20, y->peer_pid = 12; /* no such process */
	assert_int_equal(ckpt_files_validate_app(v, 2, &err), -EBADMSG);
}

/* ---- memory ---- */

#define BASE 0x400000UL

struct pages_file {
	char dir[64];
	int dirfd;
	struct ckpt_blob blob;
};

/* A pages file holding npages pages of a pattern, its frame fed sum
 * (the per-VMA sums in VMA order, as the dump feeds it). */
static void pages_write(struct pages_file *p, const uint8_t *payload, size_t len, const uint8_t *sum, size_t sumlen)
{
	snprintf(p->dir, sizeof(p->dir), "/tmp/krg-test-validate.XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	p->dirfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(p->dirfd >= 0);
	struct ckpt_error err = { 0 };
	struct ckpt_writer *w;
	assert_int_equal(ckpt_writer_open(p->dirfd, "pages-1.img", CKPT_PART_PAGES, &w, &err), 0);
	assert_int_equal(ckpt_writer_write(w, payload, len, &err), 0);
	ckpt_writer_sum(w, sum, sumlen);
	assert_int_equal(ckpt_writer_commit(w, &err), 0);
	assert_int_equal(ckpt_read_part(p->dirfd, "pages-1.img", CKPT_PART_PAGES, &p->blob, &err), 0);
	assert_int_equal(p->blob.len, len);
}

static void pages_free(struct pages_file *p)
{
	ckpt_blob_free(&p->blob);
	unlinkat(p->dirfd, "pages-1.img", 0);
	close(p->dirfd);
	rmdir(p->dir);
}

static void region_sum(const uint8_t *p, size_t len, uint8_t out[16])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, 16);
}

struct mm {
	Krg__Ckpt__Mm mm;
	Krg__Ckpt__MmFields fields;
	Krg__Ckpt__Vma v[2], *vp[2];
	Krg__Ckpt__PageRun run[2], *runp[2];
	uint8_t sum[2][16];
};

/* Two anonymous VMAs of 2 pages, the first saved whole (one run at
 * payload 0), the second with its second page only (payload 8192). */
static void good_mm(struct mm *m, const uint8_t *payload)
{
	memset(m, 0, sizeof(*m));
	krg__ckpt__mm__init(&m->mm);
	krg__ckpt__mm_fields__init(&m->fields);
	m->mm.fields = &m->fields;
	m->mm.pages_size = 3 * CKPT_PAGE;
	for (int i = 0; i < 2; i++) {
		krg__ckpt__vma__init(&m->v[i]);
		krg__ckpt__page_run__init(&m->run[i]);
		m->v[i].kind = KRG__CKPT__VMA_KIND__VMA_ANON;
		m->v[i].start = BASE + (uint64_t)i * 4 * CKPT_PAGE;
		m->v[i].end = m->v[i].start + 2 * CKPT_PAGE;
		m->runp[i] = &m->run[i];
		m->v[i].n_runs = 1;
		m->v[i].runs = &m->runp[i];
		m->vp[i] = &m->v[i];
		m->v[i].has_checksum = true;
		m->v[i].checksum.len = 16;
		m->v[i].checksum.data = m->sum[i];
	}
	m->run[0] = (Krg__Ckpt__PageRun)KRG__CKPT__PAGE_RUN__INIT;
	m->run[0].start = m->v[0].start, m->run[0].npages = 2, m->run[0].offset = 0;
	m->run[1] = (Krg__Ckpt__PageRun)KRG__CKPT__PAGE_RUN__INIT;
	m->run[1].start = m->v[1].start + CKPT_PAGE, m->run[1].npages = 1, m->run[1].offset = 2 * CKPT_PAGE;
	region_sum(payload, 2 * CKPT_PAGE, m->sum[0]);
	region_sum(payload + 2 * CKPT_PAGE, CKPT_PAGE, m->sum[1]);
	m->mm.n_vmas = 2;
	m->mm.vmas = m->vp;
}

/* The VMA sums in VMA order: what the dump feeds the frame sum. */
static void mm_sums(const struct mm *m, uint8_t sums[32])
{
	memcpy(sums, m->sum[0], 16);
	memcpy(sums + 16, m->sum[1], 16);
}

/* The pages file m describes, its frame summed over m's VMA sums. */
static void mm_pages(const struct mm *m, const uint8_t *payload, struct pages_file *p)
{
	uint8_t sums[32];
	mm_sums(m, sums);
	pages_write(p, payload, 3 * CKPT_PAGE, sums, sizeof(sums));
}

static void mm_check(struct mm *m, const struct pages_file *p, const char *want)
{
	struct ckpt_error err = { 0 };
	int r = ckpt_mm_validate(&m->mm, &p->blob, false, &err);
	if (want) {
		if (r != -EBADMSG)
			fail_msg("got %d, expected a refusal about '%s'", r, want);
		if (!strstr(err.msg, want))
			fail_msg("refusal '%s' does not say '%s'", err.msg, want);
	} else if (r != 0) {
		fail_msg("refused a good mm: %s", err.msg);
	}
}

static uint8_t *pattern(void)
{
	uint8_t *b = malloc(3 * CKPT_PAGE);
	assert_non_null(b);
	for (size_t i = 0; i < 3 * CKPT_PAGE; i++)
		b[i] = (uint8_t)(i * 7 + i / 4096);
	return b;
}

static void mm_good_and_damaged(void **state)
{
	uint8_t *payload = pattern();
	struct mm m;
	good_mm(&m, payload);
	uint8_t sums[32];
	mm_sums(&m, sums);
	struct pages_file p;
	pages_write(&p, payload, 3 * CKPT_PAGE, sums, sizeof(sums));
	mm_check(&m, &p, NULL);
	/* One byte of a VMA's saved pages changed (its sum says otherwise). */
	m.sum[1][5] ^= 1;
	mm_check(&m, &p, "fail their checksum");
	pages_free(&p);

	/* The VMA sums agree with the pages but the frame was summed over
	 * other sums: the pages file is not the one the mm describes. */
	good_mm(&m, payload);
	sums[0] ^= 0x80;
	pages_write(&p, payload, 3 * CKPT_PAGE, sums, sizeof(sums));
	mm_check(&m, &p, "checksum mismatch");
	pages_free(&p);
	free(payload);
}

/* A sparse (pre-copy) image: runs anywhere in the payload (here the
 * second VMA's page first), each VMA summed over its pages' XXH3-64. */
static void page_sums(const uint8_t *p, size_t npages, uint8_t out[16])
{
	XXH3_state_t *st = XXH3_createState();
	assert_non_null(st);
	XXH3_128bits_reset(st);
	for (size_t i = 0; i < npages; i++) {
		XXH64_canonical_t k;
		XXH64_canonicalFromHash(&k, XXH3_64bits(p + i * CKPT_PAGE, CKPT_PAGE));
		XXH3_128bits_update(st, k.digest, sizeof(k.digest));
	}
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out, c.digest, 16);
	XXH3_freeState(st);
}

static void mm_sparse(void **state)
{
	uint8_t *payload = pattern();
	struct mm m;
	good_mm(&m, payload);
	m.mm.pages_sparse = true;
	m.run[0].offset = CKPT_PAGE;  /* pages 1-2 of the payload */
	m.run[1].offset = 0;          /* page 0 */
	page_sums(payload + CKPT_PAGE, 2, m.sum[0]);
	page_sums(payload, 1, m.sum[1]);
	struct pages_file p;
	mm_pages(&m, payload, &p);
	mm_check(&m, &p, NULL);
	/* The same sums read as a dense image: its runs must tile the payload. */
	m.mm.pages_sparse = false;
	mm_check(&m, &p, "out of bounds");
	m.mm.pages_sparse = true;
	m.sum[0][0] ^= 1;
	mm_check(&m, &p, "fail their checksum");
	pages_free(&p);
	free(payload);
}

static void mm_malformed(void **state)
{
	uint8_t *payload = pattern();
	struct mm m;
	good_mm(&m, payload);
	struct pages_file p;
	mm_pages(&m, payload, &p);

#define BREAK(stmt, want)                  \
	do {                               \
		good_mm(&m, payload);      \
		stmt;                      \
		mm_check(&m, &p, want);    \
	} while (0)
	BREAK(m.mm.pages_size = 2 * CKPT_PAGE, "pages file holds");
	BREAK(m.v[0].end = m.v[0].start, "is malformed");
	BREAK(m.v[0].start += 12, "is malformed");
	BREAK(m.v[1].start = m.v[0].start + CKPT_PAGE, "is malformed");         /* overlaps */
	BREAK((m.v[0].start = CKPT_TASK_SIZE, m.v[0].end = CKPT_TASK_SIZE + 2 * CKPT_PAGE), "is malformed");
	BREAK(m.v[0].kind = (Krg__Ckpt__VmaKind)42, "unknown kind");
	BREAK(m.v[0].kind = KRG__CKPT__VMA_KIND__VMA_FILE, "no path");
	BREAK(m.run[0].npages = 3, "out of bounds");                            /* beyond its VMA */
	BREAK(m.run[0].npages = 0, "out of bounds");
	BREAK(m.run[0].start = m.v[0].start - CKPT_PAGE, "out of bounds");
	BREAK(m.run[1].offset = CKPT_PAGE, "out of bounds");                    /* not where the last ended */
	BREAK(m.v[1].has_checksum = false, "no checksum");
	BREAK(m.v[1].checksum.len = 8, "no checksum");
	BREAK(m.v[1].n_runs = 0, "cover");                                      /* a page under no run */
	BREAK((m.mm.auxv.len = 20, m.mm.auxv.data = payload), "auxv");
	/* A sparse image's runs may point anywhere, but inside the payload. */
	BREAK((m.mm.pages_sparse = true, m.run[0].offset = 2 * CKPT_PAGE), "out of bounds");
#undef BREAK
	pages_free(&p);
	free(payload);
}

/* ---- System V objects ---- */

struct saved {
	Krg__Ipc__Object o[3];
	Krg__Ipc__Perm perm;
	uint32_t semval[2];
	int32_t sempid[2];
	ProtobufCBinaryData bin[3];
};

static void saved_init(struct saved *s)
{
	memset(s, 0, sizeof(*s));
	krg__ipc__perm__init(&s->perm);
	for (int i = 0; i < 3; i++) {
		krg__ipc__object__init(&s->o[i]);
		s->o[i].perm = &s->perm;
		s->o[i].kind = 1; /* a queue */
		s->o[i].id = i;
	}
	/* The third a semaphore set of 2. */
	s->o[2].kind = 2;
	s->o[2].n_semval = s->o[2].n_sempid = 2;
	s->o[2].semval = s->semval;
	s->o[2].sempid = s->sempid;
}

static int saved_validate(struct saved *s, size_t n, size_t *count, char *msg, size_t msglen)
{
	Krg__Ipc__Saved sv = KRG__IPC__SAVED__INIT;
	for (size_t i = 0; i < n; i++) {
		s->bin[i].len = krg__ipc__object__get_packed_size(&s->o[i]);
		s->bin[i].data = malloc(s->bin[i].len + 1);
		assert_non_null(s->bin[i].data);
		krg__ipc__object__pack(&s->o[i], s->bin[i].data);
	}
	sv.n_objects = n;
	sv.objects = s->bin;
	size_t len = krg__ipc__saved__get_packed_size(&sv);
	uint8_t *buf = malloc(len + 1);
	assert_non_null(buf);
	krg__ipc__saved__pack(&sv, buf);
	struct ckpt_error err = { 0 };
	int r = ckpt_sysv_validate(buf, len, count, &err);
	snprintf(msg, msglen, "%s", err.msg);
	free(buf);
	for (size_t i = 0; i < n; i++)
		free(s->bin[i].data);
	return r;
}

static void sysv(void **state)
{
	struct saved s;
	char msg[512];
	size_t n = 0;
	saved_init(&s);
	assert_int_equal(saved_validate(&s, 3, &n, msg, sizeof(msg)), 0);
	assert_int_equal(n, 3);

	saved_init(&s);
	s.o[1].id = 0; /* two queues under one id */
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "twice"));
	saved_init(&s);
	s.o[2].id = 0; /* a set and a queue may share an id: other spaces */
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), 0);

	saved_init(&s);
	s.o[0].kind = 3;
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "inconsistent"));
	saved_init(&s);
	s.o[1].id = -5;
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);
	saved_init(&s);
	s.o[2].n_sempid = 1; /* values and pids disagree */
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);
	saved_init(&s);
	s.o[0].n_semval = s.o[0].n_sempid = 2; /* a queue with semaphores */
	s.o[0].semval = s.semval, s.o[0].sempid = s.sempid;
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);

	/* An undo record must have one value per semaphore. */
	saved_init(&s);
	int32_t adj[1] = { -1 };
	Krg__Ipc__Undo u = KRG__IPC__UNDO__INIT, *up = &u;
	u.n_semadj = 1, u.semadj = adj;
	s.o[2].n_undos = 1, s.o[2].undos = &up;
	assert_int_equal(saved_validate(&s, 3, NULL, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "undo record"));

	/* Not a Saved at all. */
	struct ckpt_error err = { 0 };
	const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	assert_int_equal(ckpt_sysv_validate(junk, sizeof(junk), NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "undecodable"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(files_good), cmocka_unit_test(files_bad), cmocka_unit_test(files_app),
		cmocka_unit_test(mm_good_and_damaged), cmocka_unit_test(mm_sparse), cmocka_unit_test(mm_malformed), cmocka_unit_test(sysv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
