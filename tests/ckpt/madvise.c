/* madvise state: areas with one advice each (MADV_DONTFORK, DONTDUMP,
 * HUGEPAGE, NOHUGEPAGE, MERGEABLE, WIPEONFORK, RANDOM, SEQUENTIAL), two
 * together, mlock, mlock2(MLOCK_ONFAULT), mseal, and one with none.
 * Their /proc/self/smaps VmFlags after the restart are exactly those
 * before, and so is their content. An advice this kernel refuses (no
 * KSM, no THP, no mseal) leaves its area without it, still compared. */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "zdtm.h"

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

#define PG 4096
#define AREA (4 * PG)
#define SEAL (-1)
#define LOCK (-2)
#define LOCK_ONFAULT (-3)
#define DONTFORK_DONTDUMP (-4)

static const struct {
	const char *name;
	int advice;
} areas[] = {
	{ "none", -100 },
	{ "MADV_DONTFORK", MADV_DONTFORK },
	{ "MADV_DONTDUMP", MADV_DONTDUMP },
	{ "MADV_HUGEPAGE", MADV_HUGEPAGE },
	{ "MADV_NOHUGEPAGE", MADV_NOHUGEPAGE },
	{ "MADV_MERGEABLE", MADV_MERGEABLE },
	{ "MADV_WIPEONFORK", MADV_WIPEONFORK },
	{ "MADV_RANDOM", MADV_RANDOM },
	{ "MADV_SEQUENTIAL", MADV_SEQUENTIAL },
	{ "MADV_DONTFORK+MADV_DONTDUMP", DONTFORK_DONTDUMP },
	{ "mlock", LOCK },
	{ "mlock2 MLOCK_ONFAULT", LOCK_ONFAULT },
	{ "mseal", SEAL },
};
#define N (sizeof(areas) / sizeof(areas[0]))

/* The VmFlags line of the VMA starting at `at`. */
static int vmflags(uintptr_t at, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	bool in = false;
	int r = -1;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t s, e;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &s, &e) == 2) {  /* a VMA's first line */
			in = s == at;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", line + 8);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	/* One reservation, areas one page apart (PROT_NONE gaps), so no two
	 * merge into one VMA whatever their flags. */
	char *base = mmap(NULL, N * (AREA + PG), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		fail("mmap");
	static char before[N][256], after[256];
	for (size_t i = 0; i < N; i++) {
		char *a = base + i * (AREA + PG);
		if (mmap(a, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a)
			fail("mmap %s", areas[i].name);
		memset(a, (int)i + 1, AREA);
		int adv = areas[i].advice;
		if (adv == SEAL)
			syscall(SYS_mseal, a, AREA, 0);
		else if (adv == LOCK)
			mlock(a, AREA);
		else if (adv == LOCK_ONFAULT)
			mlock2(a, AREA, MLOCK_ONFAULT);
		else if (adv == DONTFORK_DONTDUMP)
			madvise(a, AREA, MADV_DONTFORK), madvise(a, AREA, MADV_DONTDUMP);
		else if (adv >= 0)
			madvise(a, AREA, adv);
		if (vmflags((uintptr_t)a, before[i], sizeof(before[i])) < 0)
			fail("no VmFlags for %s", areas[i].name);
	}
	test_ready(argv);
	test_wait();
	for (size_t i = 0; i < N; i++) {
		char *a = base + i * (AREA + PG);
		if (vmflags((uintptr_t)a, after, sizeof(after)) < 0)
			fail("%s: no VMA at %p after the restart", areas[i].name, (void *)a);
		if (strcmp(before[i], after))
			fail("%s: VmFlags \"%s\", was \"%s\"", areas[i].name, after, before[i]);
		for (size_t k = 0; k < AREA; k++)
			if (a[k] != (char)(i + 1))
				fail("%s: content at +%zu", areas[i].name, k);
	}
	pass();
}
