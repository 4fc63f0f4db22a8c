/* A large shared anonymous region with few pages in it (issue 14 item
 * 6): a parent and its child share 4 GiB of MAP_SHARED|MAP_ANONYMOUS
 * (less if the machine's overcommit refuses it), with a handful of pages
 * written far apart, some by the parent and some by the child only (so
 * present in the object but never mapped by the parent). The image must
 * hold those pages once, not the whole region once per process (run.sh
 * checks its size); after restart every written page holds its pattern,
 * the rest reads zero, and what the child writes the parent reads. */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "zdtm.h"

#define PG 4096UL

static size_t sz;

/* Page k of the n test pages: spread over the region, first and last included. */
static size_t page_at(int k, int n) { return (sz / PG - 1) * (size_t)k / (size_t)(n - 1) * PG; }

static unsigned char pat(size_t off, int gen) { return (unsigned char)((off >> 12) * 7 + 1 + gen * 101); }

#define NPAGES 7

int main(int argc, char **argv)
{
	test_init(argc, argv);
	volatile unsigned char *m = MAP_FAILED;
	for (sz = 4UL << 30; sz >= (256UL << 20) && m == MAP_FAILED; sz /= 2)
		m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sz *= 2;  /* the loop halved it once more after the good one */
	volatile unsigned *flag = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || flag == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	/* Even pages by the parent, odd ones by the child before the checkpoint. */
	for (int k = 0; k < NPAGES; k += 2)
		for (size_t i = 0; i < PG; i += 512)
			m[page_at(k, NPAGES) + i] = pat(page_at(k, NPAGES) + i, 0);
	pid_t kid = fork();
	if (kid == 0) {
		for (int k = 1; k < NPAGES; k += 2)
			for (size_t i = 0; i < PG; i += 512)
				m[page_at(k, NPAGES) + i] = pat(page_at(k, NPAGES) + i, 0);
		*flag = 1;
		/* after restart: its turn (2), writes generation 1, says so (3) */
		while (*flag != 2)
			usleep(1000);
		for (int k = 0; k < NPAGES; k++)
			m[page_at(k, NPAGES) + 8] = pat(page_at(k, NPAGES) + 8, 1);
		*flag = 3;
		_exit(0);
	}
	while (*flag != 1)
		usleep(1000);
	test_ready(argv);
	test_wait();
	for (int k = 0; k < NPAGES; k++)
		for (size_t i = 0; i < PG; i += 512)
			if (m[page_at(k, NPAGES) + i] != pat(page_at(k, NPAGES) + i, 0))
				fail("byte %#zx of the shared region (written by the %s) lost", page_at(k, NPAGES) + i, k % 2 ? "child" : "parent");
	/* Untouched pages read zero (a few, between the written ones). */
	for (int k = 0; k < NPAGES - 1; k++)
		if (m[page_at(k, NPAGES) + (page_at(k + 1, NPAGES) - page_at(k, NPAGES)) / 2])
			fail("untouched byte %#zx is not zero", page_at(k, NPAGES) + (page_at(k + 1, NPAGES) - page_at(k, NPAGES)) / 2);
	*flag = 2;
	for (int i = 0; i < 5000 && *flag != 3; i++)
		usleep(1000);
	if (*flag != 3)
		fail("the child's flag never reached the parent: the flag page is no longer shared");
	for (int k = 0; k < NPAGES; k++)
		if (m[page_at(k, NPAGES) + 8] != pat(page_at(k, NPAGES) + 8, 1))
			fail("the child's write at %#zx is not seen by the parent: the region is no longer shared", page_at(k, NPAGES) + 8);
	int st;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("child status %#x", st);
	pass();
}
