/* lazy.c — post-copy restore: the process runs before the contents of
 * its private anonymous memory are in (ckpt.h, "Lazy restore").
 *
 * The restore maps every VMA as usual but, for the lazy ones, registers
 * them on a userfaultfd made in the process (missing pages) instead of
 * copying their pages. This thread then, until every page is in:
 *   - serves faults: the image's copy of the page (and its neighbours in
 *     a 64 KiB window), or a zero page where the image has none;
 *   - checks the pages against their VMA sums, then copies the rest in,
 *     2 MiB at a time, serving faults in between;
 *   - follows the process's own changes, which the kernel reports as
 *     events and holds the process on until they are read: a fork gets
 *     its own userfaultfd and needs the same pages (its copy of what was
 *     still missing); mremap moves pending pages; munmap and
 *     MADV_DONTNEED drop them (a later fault there is a zero page, as
 *     without us).
 * "Pending" is a sorted list of pieces (address, image bytes): what was
 * never copied in. A page leaves it the moment it is copied (fault or
 * background), so nothing is ever copied twice over the process's own
 * writes (UFFDIO_COPY refuses a present page anyway: EEXIST).
 * When the kernel changes a registered mm (an event not read yet),
 * UFFDIO_COPY says EAGAIN: faults are then retried after the events. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/fault.h"
#include "lib/macro.h"

#define LZ_WINDOW (64ULL << 10)  /* a fault brings in this aligned window of its piece */
#define LZ_STEP (2ULL << 20)     /* background copy and check, per step */
#define LZ_FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

struct lz_piece {
	uint64_t dst, len;
	const uint8_t *src;
};

/* One mm: the process's, or one of its forks'. */
struct lz_ctx {
	int uffd;
	struct lz_piece *p;  /* pending, sorted by dst, disjoint */
	size_t n, cap;
	uint64_t *defer;     /* faults to serve again after the events */
	size_t nd, capd;
	bool dead;           /* its mm is gone (exit, exec) */
};

struct ckpt_lazy {
	int uffd;            /* until started: the process's */
	struct lz_ctx *c;
	size_t nc;
	struct ckpt_vma_check **chk;
	size_t nchk, ichk;
	pthread_mutex_t map_lock;
	void *map;           /* the pages file mapping, once taken (map_lock) */
	size_t map_len;
	bool map_done;       /* the thread ended: the mapping is unmapped when taken */
	pid_t pid;
	pthread_t th;
	bool started;
	atomic_bool stop;
	int stop_efd, done_efd;
	int slow_ms;         /* tests: pause between background steps */
	struct timespec t0;
	struct ckpt_lazy_stats st;
};

struct ckpt_lazy *ckpt_lazy_new(void)
{
	struct ckpt_lazy *lz = calloc(1, sizeof(*lz));
	if (!lz)
		abort();
	lz->uffd = -1;
	pthread_mutex_init(&lz->map_lock, NULL);
	lz->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	lz->done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lz->stop_efd < 0 || lz->done_efd < 0)
		abort();
	/* Fault injection for the tests (tests/migrate/migrate.sh, 6d): while
	 * the file that fault point lazy-slow names exists, a pause of that many ms
	 * between background steps, so that the process forks, remaps and
	 * drops memory while pages are still missing. */
	char buf[512];
	const char *s = krg_fault_value("lazy-slow", buf, sizeof(buf));
	FILE *f = s ? fopen(s, "re") : NULL;
	if (f) {
		if (fscanf(f, "%d", &lz->slow_ms) != 1 || lz->slow_ms < 0 || lz->slow_ms > 1000)
			lz->slow_ms = 0;
		fclose(f);
	}
	return lz;
}

int ckpt_lazy_attach(struct ckpt_lazy *lz, int uffd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = LZ_FEATURES };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return -errno;
	if ((api.features & LZ_FEATURES) != LZ_FEATURES)
		return -EOPNOTSUPP;
	lz->uffd = uffd;
	return 0;
}

int ckpt_lazy_uffd(const struct ckpt_lazy *lz)
{
	return lz->uffd;
}

static struct lz_ctx *ctx_add(struct ckpt_lazy *lz, int uffd)
{
	struct lz_ctx *nc = realloc(lz->c, (lz->nc + 1) * sizeof(*nc));
	if (!nc)
		abort();
	lz->c = nc;
	nc[lz->nc] = (struct lz_ctx){ .uffd = uffd };
	return &lz->c[lz->nc++];
}

static void piece_insert(struct lz_ctx *c, size_t at, struct lz_piece x)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->p = realloc(c->p, c->cap * sizeof(*c->p));
		if (!c->p)
			abort();
	}
	memmove(c->p + at + 1, c->p + at, (c->n - at) * sizeof(*c->p));
	c->p[at] = x;
	c->n++;
}

void ckpt_lazy_add(struct ckpt_lazy *lz, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse)
{
	struct lz_ctx *c = lz->nc ? &lz->c[0] : ctx_add(lz, -1);
	for (size_t j = 0; j < v->n_runs; j++)  /* VMAs come in address order, runs too */
		piece_insert(c, c->n, (struct lz_piece){ v->runs[j]->start, v->runs[j]->npages * CKPT_PAGE, pages->data + v->runs[j]->offset });
	lz->chk = realloc(lz->chk, (lz->nchk + 1) * sizeof(*lz->chk));
	if (!lz->chk)
		abort();
	lz->chk[lz->nchk++] = ckpt_vma_check_new(v, pages, sparse);
}

void ckpt_lazy_take_map(struct ckpt_lazy *lz, struct ckpt_blob *pages)
{
	pthread_mutex_lock(&lz->map_lock);
	if (lz->map_done)
		munmap(pages->map, pages->map_len);
	else
		lz->map = pages->map, lz->map_len = pages->map_len;
	pages->map = NULL;
	pthread_mutex_unlock(&lz->map_lock);
}

bool ckpt_lazy_running(const struct ckpt_lazy *lz)
{
	return lz && lz->started;
}

int ckpt_lazy_fd(const struct ckpt_lazy *lz)
{
	return lz->done_efd;
}

/* First piece ending after addr. */
static size_t piece_find(const struct lz_ctx *c, uint64_t addr)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->p[mid].dst + c->p[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A piece boundary at addr (split the piece across it). */
static void piece_split(struct lz_ctx *c, uint64_t addr)
{
	size_t i = piece_find(c, addr);
	if (i == c->n || c->p[i].dst >= addr)
		return;
	struct lz_piece a = c->p[i];
	uint64_t k = addr - a.dst;
	c->p[i].len = k;
	piece_insert(c, i + 1, (struct lz_piece){ addr, a.len - k, a.src + k });
}

/* [s, e) is no longer pending. */
static void pending_cut(struct lz_ctx *c, uint64_t s, uint64_t e)
{
	if (s >= e)
		return;
	piece_split(c, s);
	piece_split(c, e);
	size_t i = piece_find(c, s), j = i;
	while (j < c->n && c->p[j].dst < e)
		j++;
	memmove(c->p + i, c->p + j, (c->n - j) * sizeof(*c->p));
	c->n -= j - i;
}

static int by_dst(const void *a, const void *b)
{
	const struct lz_piece *x = a, *y = b;
	return x->dst < y->dst ? -1 : x->dst > y->dst;
}

/* mremap moved [from, from + len) to `to`. */
static void pending_move(struct lz_ctx *c, uint64_t from, uint64_t to, uint64_t len)
{
	piece_split(c, from);
	piece_split(c, from + len);
	for (size_t i = 0; i < c->n; i++)
		if (c->p[i].dst >= from && c->p[i].dst < from + len)
			c->p[i].dst = c->p[i].dst - from + to;
	qsort(c->p, c->n, sizeof(*c->p), by_dst);
}

/* Copy [dst, dst + len) from src in; each page copied (or found there
 * already) leaves pending. 0, -EAGAIN (the mm is changing: read the events
 * first), -ESRCH (the mm is gone) or another -errno. */
static int lz_copy(struct ckpt_lazy *lz, struct lz_ctx *c, uint64_t dst, const uint8_t *src, uint64_t len)
{
	while (len) {
		struct uffdio_copy x = { .dst = dst, .src = (uintptr_t)src, .len = len };
		int rc = ioctl(c->uffd, UFFDIO_COPY, &x);
		int e = errno;
		if (x.copy > 0) {
			pending_cut(c, dst, dst + (uint64_t)x.copy);
			lz->st.bytes += (uint64_t)x.copy;
			dst += (uint64_t)x.copy, src += x.copy, len -= (uint64_t)x.copy;
			continue;
		}
		if (rc == 0)
			return -EIO;
		if (e == EEXIST) {  /* there already: not ours to copy again */
			struct uffdio_range w = { dst, CKPT_PAGE };
			ioctl(c->uffd, UFFDIO_WAKE, &w);
			pending_cut(c, dst, dst + CKPT_PAGE);
			dst += CKPT_PAGE, src += CKPT_PAGE, len -= CKPT_PAGE;
			continue;
		}
		return -e;
	}
	return 0;
}

/* A fault at addr: its window of the image, or a zero page. The area
 * may be gone meanwhile (unmapped by another thread: its event comes
 * after the fault): nothing to serve then (ENOENT), the thread is woken
 * and faults again on what is there now. */
static int serve(struct ckpt_lazy *lz, struct lz_ctx *c, uint64_t addr)
{
	addr &= ~(uint64_t)(CKPT_PAGE - 1);
	size_t i = piece_find(c, addr);
	int r;
	if (i < c->n && c->p[i].dst <= addr) {
		uint64_t w = addr & ~(LZ_WINDOW - 1);
		uint64_t s = MAX(w, c->p[i].dst), e = MIN(w + LZ_WINDOW, c->p[i].dst + c->p[i].len);
		r = lz_copy(lz, c, s, c->p[i].src + (s - c->p[i].dst), e - s);
	} else {
		struct uffdio_zeropage z = { .range = { addr, CKPT_PAGE } };
		r = ioctl(c->uffd, UFFDIO_ZEROPAGE, &z) == 0 ? 0 : -errno;
	}
	if (r == -EEXIST || r == -ENOENT || r == -EINVAL) {
		struct uffdio_range w = { addr, CKPT_PAGE };
		ioctl(c->uffd, UFFDIO_WAKE, &w);
		if (r == -ENOENT || r == -EINVAL)
			pending_cut(c, addr, addr + CKPT_PAGE);
		return 0;
	}
	return r;
}


/* A page that cannot be put in (out of memory, ...) must not read as
 * zeros once we give up: the process is killed, and we say why. */
static void fail(struct ckpt_lazy *lz, int r, const char *fmt, ...) _printf_(3, 4);
static void fail(struct ckpt_lazy *lz, int r, const char *fmt, ...)
{
	if (lz->st.result)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(lz->st.msg, sizeof(lz->st.msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(lz->st.msg))
		snprintf(lz->st.msg + n, sizeof(lz->st.msg) - (size_t)n, ": process %d killed", (int)lz->pid);
	lz->st.result = r;
	kill(lz->pid, SIGKILL);
}

static void defer(struct lz_ctx *c, uint64_t addr)
{
	if (c->nd == c->capd) {
		c->capd = c->capd ? 2 * c->capd : 16;
		c->defer = realloc(c->defer, c->capd * sizeof(*c->defer));
		if (!c->defer)
			abort();
	}
	c->defer[c->nd++] = addr;
}

/* A fault at addr of context c: served, or retried after the events
 * (EAGAIN), or its mm is gone. */
static void serve_fault(struct ckpt_lazy *lz, struct lz_ctx *c, uint64_t addr)
{
	int r = serve(lz, c, addr);
	if (r == -EAGAIN)
		defer(c, addr);
	else if (r == -ESRCH)
		c->dead = true;
	else if (r < 0)
		fail(lz, r, "serving a page fault at %#llx: %s", (unsigned long long)addr, strerror(-r));
}

/* Everything the kernel has for context ci. */
static void read_events(struct ckpt_lazy *lz, size_t ci)
{
	struct uffd_msg m[16];
	for (;;) {
		ssize_t n = read(lz->c[ci].uffd, m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (size_t k = 0; k < (size_t)n / sizeof(m[0]); k++) {
			struct lz_ctx *c = &lz->c[ci];
			switch (m[k].event) {
			case UFFD_EVENT_PAGEFAULT: {
				lz->st.faults++;
				serve_fault(lz, c, m[k].arg.pagefault.address);
				break;
			}
			case UFFD_EVENT_FORK: {
				/* The child has what was present here; what is
				 * still pending here is pending there too. */
				int nfd = (int)m[k].arg.fork.ufd;
				fcntl(nfd, F_SETFD, FD_CLOEXEC);
				fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
				struct lz_ctx *nc = ctx_add(lz, nfd);
				c = &lz->c[ci];  /* moved by the realloc */
				nc->cap = nc->n = c->n;
				nc->p = malloc(MAX(c->n, 1) * sizeof(*nc->p));
				if (!nc->p)
					abort();
				memcpy(nc->p, c->p, c->n * sizeof(*c->p));
				lz->st.forks++;
				break;
			}
			case UFFD_EVENT_REMAP:
				pending_move(c, m[k].arg.remap.from, m[k].arg.remap.to, m[k].arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				pending_cut(c, m[k].arg.remove.start, m[k].arg.remove.end);
				break;
			default:
				break;
			}
		}
	}
}

static void retry_deferred(struct ckpt_lazy *lz, struct lz_ctx *c)
{
	size_t nd = c->nd;
	c->nd = 0;
	for (size_t i = 0; i < nd; i++)
		serve_fault(lz, c, c->defer[i]);
}

static bool finished(const struct ckpt_lazy *lz)
{
	if (lz->ichk < lz->nchk)
		return false;
	for (size_t i = 0; i < lz->nc; i++)
		if (!lz->c[i].dead && (lz->c[i].n || lz->c[i].nd))
			return false;
	return true;
}

/* One step of background work: check the next sums, else copy the next
 * pending bytes of some context. */
static void background(struct ckpt_lazy *lz)
{
	if (lz->ichk < lz->nchk) {
		uint64_t n;
		int r = ckpt_vma_check_step(lz->chk[lz->ichk], LZ_STEP, &n);
		if (r == 0)
			return;
		if (r < 0) {
			uint64_t s, e;
			ckpt_vma_check_range(lz->chk[lz->ichk], &s, &e);
			fail(lz, -EBADMSG, "the pages of VMA %#llx-%#llx fail their checksum (the image was damaged on this node)",
			     (unsigned long long)s, (unsigned long long)e);
		}
		ckpt_vma_check_free(lz->chk[lz->ichk]);
		lz->chk[lz->ichk++] = NULL;
		return;
	}
	for (size_t i = 0; i < lz->nc; i++) {
		struct lz_ctx *c = &lz->c[i];
		if (c->dead || !c->n)
			continue;
		struct lz_piece p = c->p[0];
		int r = lz_copy(lz, c, p.dst, p.src, MIN(p.len, LZ_STEP));
		if (r == -ESRCH)
			c->dead = true;
		else if (r == -ENOENT || r == -EINVAL) {
			/* not registered there any more without an event we saw
			 * (cannot happen with the events on): nothing to copy */
			pending_cut(c, p.dst, p.dst + MIN(p.len, LZ_STEP));
		} else if (r < 0 && r != -EAGAIN) {
			fail(lz, r, "copying %#llx: %s", (unsigned long long)p.dst, strerror(-r));
			c->dead = true;
		}
		return;
	}
}

static void *lazy_main(void *arg)
{
	struct ckpt_lazy *lz = arg;
	struct pollfd *fds = NULL;
	size_t *map = NULL;
	while (!atomic_load(&lz->stop) && !finished(lz)) {
		size_t k = 0;
		fds = realloc(fds, (lz->nc + 1) * sizeof(*fds));
		map = realloc(map, (lz->nc + 1) * sizeof(*map));
		if (!fds || !map)
			abort();
		fds[0] = (struct pollfd){ .fd = lz->stop_efd, .events = POLLIN };
		for (size_t i = 0; i < lz->nc; i++)
			if (!lz->c[i].dead) {
				map[k] = i;
				fds[1 + k++] = (struct pollfd){ .fd = lz->c[i].uffd, .events = POLLIN };
			}
		bool waiting = false;  /* only deferred faults left: wait for their events */
		for (size_t i = 0; i < lz->nc; i++)
			waiting |= !lz->c[i].dead && lz->c[i].nd;
		int tmo = lz->slow_ms ? lz->slow_ms : 0;
		if (poll(fds, 1 + k, waiting ? 10 : tmo) < 0 && errno != EINTR)
			break;
		for (size_t j = 0; j < k; j++) {
			if (fds[1 + j].revents & POLLIN)
				read_events(lz, map[j]);
			if (fds[1 + j].revents & (POLLERR | POLLHUP | POLLNVAL))
				lz->c[map[j]].dead = true;
		}
		for (size_t i = 0; i < lz->nc; i++)
			if (!lz->c[i].dead && lz->c[i].nd)
				retry_deferred(lz, &lz->c[i]);
		background(lz);
		if (lz->st.result < 0)
			break;
	}
	free(fds);
	free(map);
	lz->st.complete = !lz->st.result && finished(lz);
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	lz->st.secs = (double)(t1.tv_sec - lz->t0.tv_sec) + (double)(t1.tv_nsec - lz->t0.tv_nsec) / 1e9;
	/* Closing a userfaultfd unregisters its areas: from here a missing
	 * page is the kernel's ordinary zero-filled one, as it should be:
	 * everything the image had is in. */
	for (size_t i = 0; i < lz->nc; i++) {
		if (lz->c[i].uffd >= 0)
			close(lz->c[i].uffd);
		lz->c[i].uffd = -1;
	}
	lz->uffd = -1;
	/* The image's pages (a tmpfs file, unlinked) are freed with the
	 * mapping, now rather than when the holder exits. */
	pthread_mutex_lock(&lz->map_lock);
	if (lz->map)
		munmap(lz->map, lz->map_len);
	lz->map = NULL;
	lz->map_done = true;
	pthread_mutex_unlock(&lz->map_lock);
	uint64_t one = 1;
	if (write(lz->done_efd, &one, sizeof(one)) < 0) {
		/* an eventfd write of 1 cannot fail but by overflow */
	}
	return NULL;
}

int ckpt_lazy_start(struct ckpt_lazy *lz, pid_t pid)
{
	if (!lz->nc || lz->uffd < 0)
		return 0;
	lz->pid = pid;
	lz->c[0].uffd = lz->uffd;
	clock_gettime(CLOCK_MONOTONIC, &lz->t0);
	int r = pthread_create(&lz->th, NULL, lazy_main, lz);
	if (r)
		return -r;
	lz->started = true;
	return 0;
}

void ckpt_lazy_free(struct ckpt_lazy *lz, struct ckpt_lazy_stats *st)
{
	if (!lz)
		return;
	if (lz->started) {
		atomic_store(&lz->stop, true);
		uint64_t one = 1;
		if (write(lz->stop_efd, &one, sizeof(one)) < 0) {
			/* cannot fail */
		}
		pthread_join(lz->th, NULL);
	} else if (lz->uffd >= 0) {
		close(lz->uffd);
	}
	if (st)
		*st = lz->st;
	for (size_t i = 0; i < lz->nc; i++) {
		if (lz->c[i].uffd >= 0 && lz->started)
			close(lz->c[i].uffd);
		free(lz->c[i].p);
		free(lz->c[i].defer);
	}
	for (size_t i = 0; i < lz->nchk; i++)
		ckpt_vma_check_free(lz->chk[i]);
	free(lz->chk);
	free(lz->c);
	if (lz->map)
		munmap(lz->map, lz->map_len);
	pthread_mutex_destroy(&lz->map_lock);
	close(lz->stop_efd);
	close(lz->done_efd);
	free(lz);
}
