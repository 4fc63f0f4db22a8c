/* Anonymous memory: a private mapping with a pattern, a read-only range,
 * a PROT_NONE range that held data, untouched reserved memory, a shared
 * anonymous mapping, and a 1 TiB writable reservation with a few pages
 * written far apart (a runtime's reserved heap, a sanitizer's shadow:
 * the dump finds them without walking the rest). */
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
	size_t huge_len = 1UL << 40;
	static const size_t huge_at[] = { 0, 4096, 1UL << 30, 1UL << 39, (1UL << 40) - 4096 };
	uint8_t *huge = mmap(NULL, huge_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED || ro == MAP_FAILED || none == MAP_FAILED || sh == MAP_FAILED || resv == MAP_FAILED || huge == MAP_FAILED)
		fail("mmap");
	for (size_t k = 0; k < sizeof(huge_at) / sizeof(huge_at[0]); k++)
		for (size_t i = 0; i < 4096; i += 512)
			huge[huge_at[k] + i] = pat(huge_at[k] + i, 5);
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
	for (size_t k = 0; k < sizeof(huge_at) / sizeof(huge_at[0]); k++)
		for (size_t i = 0; i < 4096; i++)
			if (huge[huge_at[k] + i] != (i % 512 ? 0 : pat(huge_at[k] + i, 5)))
				fail("reservation byte %#zx", huge_at[k] + i);
	/* Untouched pages of it read as zero (sampled). */
	for (size_t off = 1UL << 20; off < huge_len; off += 1UL << 36)
		if (huge[off] != 0)
			fail("reservation byte %#zx not zero", off);
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
