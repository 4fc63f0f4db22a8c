/* Anonymous memory: a private mapping with a pattern, a read-only range,
 * a PROT_NONE range that held data, untouched reserved memory, and a
 * shared anonymous mapping. */
#include <stdint.h>
#include <sys/mman.h>
#include "zdtm.h"

#define MB (1UL << 20)

static uint8_t pat(size_t i, unsigned seed) { return (uint8_t)(i * 31 + seed + (i >> 12)); }

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t len = 8 * MB;
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *ro = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *none = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *sh = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint8_t *resv = mmap(NULL, 64 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED || ro == MAP_FAILED || none == MAP_FAILED || sh == MAP_FAILED || resv == MAP_FAILED)
		fail("mmap");
	for (size_t i = 0; i < len; i += (i % 3 ? 4096 : 1))  /* some pages full, some sparse */
		a[i] = pat(i, 1);
	for (size_t i = 0; i < MB; i++)
		ro[i] = pat(i, 2), none[i] = pat(i, 3), sh[i] = pat(i, 4);
	mprotect(ro, MB, PROT_READ);
	mprotect(none, MB, PROT_NONE);
	test_ready(argv);
	test_wait();
	for (size_t i = 0; i < len; i += (i % 3 ? 4096 : 1))
		if (a[i] != pat(i, 1))
			fail("private anon byte %zu: %u != %u", i, a[i], pat(i, 1));
	for (size_t i = 0; i < MB; i++)
		if (ro[i] != pat(i, 2) || sh[i] != pat(i, 4))
			fail("read-only or shared byte %zu", i);
	if (mprotect(none, MB, PROT_READ) < 0)
		fail("mprotect");
	for (size_t i = 0; i < MB; i++)
		if (none[i] != pat(i, 3))
			fail("PROT_NONE byte %zu", i);
	/* Protections came back too: writing to ro must fault. Checked via
	 * /proc/self/maps rather than a SIGSEGV handler. */
	char line[512], perms[8];
	FILE *m = fopen("/proc/self/maps", "r");
	int ok = 0;
	unsigned long s, e;
	while (m && fgets(line, sizeof(line), m))
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s <= (unsigned long)ro && (unsigned long)ro < e)
			ok = !strcmp(perms, "r--p");
	if (!ok)
		fail("read-only range lost its protection");
	pass();
}
