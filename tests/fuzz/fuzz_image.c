/* fuzz_image.c — libFuzzer target for checkpoint images, which come from
 * the user (krg restart --dir, krg image show) or from another node
 * (ckpt.file, a migration's image): the 64-byte frame of every part
 * (src/ckpt/image.c), the inventory's process tree, each process's core,
 * mm and files messages with their checks (core threads and siginfos,
 * VMAs and the page runs that index the pages file — ckpt_mm_validate —,
 * fds — ckpt_files_validate, ckpt_files_validate_app), the System V
 * objects of sysvipc.img (ckpt_sysv_read, ckpt_sysv_validate), and both
 * forms of `krg image show`. Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
 * so checksums are computed but not checked (CKPT_SUMS_CHECKED).
 *
 * Input: one flags byte, then records [part u8][pid u32 le][len u32 le]
 * [len bytes]; each is written as the file of that part ("inventory.img",
 * "core-PID.img", ..., "sysvipc.img"; part 1..6 as enum ckpt_part) in a scratch
 * directory. Flags bit 0: the bytes are the whole file (frame included);
 * otherwise they are the payload and the target puts a frame with the
 * right magic, version, part and length before them. Bits 1-2: what
 * ckpt_image_load checks of the pages (CKPT_LOAD_*). tests/fuzz/
 * mkseed_image.py makes seeds from a real image directory.
 * Build and run: scripts/fuzz.sh SECONDS image. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/ckpt.h"

static char dir[] = "/dev/shm/krg-fuzz-image.XXXXXX";
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir) && !mkdtemp(strcpy(dir, "/tmp/krg-fuzz-image.XXXXXX")))
		abort();
	if (!(devnull = fopen("/dev/null", "we")))
		abort();
	return 0;
}

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void put(const char *name, uint32_t part, bool raw, const uint8_t *p, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (!raw) {
		uint8_t frame[64] = "KRGCKPT\n";
		uint32_t version = CKPT_IMAGE_VERSION;
		uint64_t l = len;
		memcpy(frame + 8, &version, 4);
		memcpy(frame + 12, &part, 4);
		memcpy(frame + 16, &l, 8);
		if (write(fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
			abort();
	}
	if (len && write(fd, p, len) != (ssize_t)len)
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefix[] = { "core", "mm", "files", "pages" };
	if (size < 1)
		return 0;
	bool raw = data[0] & 1;
	int pages = (data[0] >> 1) & 3;
	bool json = data[0] & 8;
	size_t off = 1;
	while (size - off >= 9) {
		uint32_t part = data[off], pid = le32(data + off + 1), len = le32(data + off + 5);
		off += 9;
		if (len > size - off)
			len = (uint32_t)(size - off);
		char name[64];
		if (part < CKPT_PART_INVENTORY || part > CKPT_PART_SYSV)
			part = CKPT_PART_INVENTORY + part % 6;
		if (part == CKPT_PART_INVENTORY)
			snprintf(name, sizeof(name), "inventory.img");
		else if (part == CKPT_PART_SYSV)
			snprintf(name, sizeof(name), "sysvipc.img");
		else
			snprintf(name, sizeof(name), "%s-%d.img", prefix[part - CKPT_PART_CORE], (int)pid);
		put(name, part, raw, data + off, len);
		off += len;
	}
	struct ckpt_image img;
	struct ckpt_error err = { 0 };
	if (ckpt_image_load(dir, pages > 2 ? CKPT_LOAD_PAGES_LAZY : pages, &img, &err) == 0)
		ckpt_image_free(&img);
	struct ckpt_error err2 = { 0 };
	ckpt_image_show(dir, json, devnull, &err2);
	uint8_t *sv = NULL;
	size_t sv_len = 0, sv_n = 0;
	struct ckpt_error err3 = { 0 };
	if (ckpt_sysv_read(dir, &sv, &sv_len, &sv_n, &err3) == 0 && sv_len)
		ckpt_sysv_validate(sv, sv_len, NULL, &err3); /* what a restart checks again */
	free(sv);
	if (getenv("KRG_FUZZ_DEBUG")) /* why a seed stops where it does */
		fprintf(stderr, "load: %s\nshow: %s\nsysv: %s\n", err.msg, err2.msg, err3.msg);
	clear_dir();
	return 0;
}
