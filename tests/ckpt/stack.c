/* Stack: variables in frames of a recursion, a large stack array, and
 * the stack still growing down after restart (MAP_GROWSDOWN kept). */
#include <stdint.h>
#include "zdtm.h"

static int deep(int depth, uint64_t seed)
{
	volatile uint64_t local[64];
	for (int i = 0; i < 64; i++)
		local[i] = seed * 6364136223846793005ULL + (uint64_t)i;
	int r;
	if (depth)
		r = deep(depth - 1, seed + 1);
	else {
		test_wait();
		r = 0;
	}
	for (int i = 0; i < 64; i++)
		if (local[i] != seed * 6364136223846793005ULL + (uint64_t)i)
			return -1;
	return r;
}

static uint64_t grow(int n)  /* touches new stack pages below the old ones */
{
	volatile char buf[16384];
	buf[0] = (char)n, buf[16383] = (char)n;
	return n ? grow(n - 1) + (uint64_t)buf[0] + (uint64_t)buf[16383] : 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_ready(argv);
	if (deep(200, 12345) < 0)
		fail("a stack variable changed");
	/* 4 MiB more stack: needs the growsdown VMA back and the rlimit. */
	uint64_t s = grow(256);
	uint64_t want = 0;
	for (int i = 1; i <= 256; i++)
		want += 2 * (uint64_t)(char)i;
	if (s != want)
		fail("stack growth: %llu != %llu", (unsigned long long)s, (unsigned long long)want);
	pass();
}
