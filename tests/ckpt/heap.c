/* Heap: malloc'd blocks with patterns (brk and mmap'd chunks), and brk
 * itself: after restart the heap must keep growing where it was. */
#include <stdint.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	enum { N = 1000 };
	static uint32_t *blk[N];
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 17 + 1) * 64;
		blk[i] = malloc(n * sizeof(uint32_t));
		for (size_t j = 0; j < n; j++)
			blk[i][j] = (uint32_t)(i * 7919 + j);
	}
	uint32_t *big = malloc(4 << 20);  /* above the mmap threshold */
	for (size_t j = 0; j < (1 << 20); j++)
		big[j] = (uint32_t)j ^ 0xdeadbeef;
	void *brk0 = sbrk(0);
	test_ready(argv);
	test_wait();
	if (sbrk(0) != brk0)
		fail("brk moved: %p -> %p", brk0, sbrk(0));
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 17 + 1) * 64;
		for (size_t j = 0; j < n; j++)
			if (blk[i][j] != (uint32_t)(i * 7919 + j))
				fail("block %d word %zu", i, j);
	}
	for (size_t j = 0; j < (1 << 20); j++)
		if (big[j] != ((uint32_t)j ^ 0xdeadbeef))
			fail("big block word %zu", j);
	/* The heap still grows: brk was restored in the kernel too. */
	char *more = sbrk(1 << 20);
	if (more == (void *)-1 || more != brk0)
		fail("sbrk after restart: %p, expected %p", more, brk0);
	memset(more, 0x5a, 1 << 20);
	for (int i = 0; i < N; i++)
		free(blk[i]);
	free(big);
	pass();
}
