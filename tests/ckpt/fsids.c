/* File system ids (issue 14 item 4): a process whose fsuid and fsgid are
 * not its effective ids (setfsuid/setfsgid, as file servers do) keeps
 * them: /proc/self/status Uid and Gid, 4th column. Here uids 0 1234 0
 * with fsuid 0 (so it still opens the driver's files), gids 0 0 0 with
 * fsgid 4321. */
#include <errno.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include "zdtm.h"

#define EUID 1234
#define FSGID 4321

static unsigned fourth(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned a, b, c, d = ~0u;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && sscanf(line + strlen(key), "%u %u %u %u", &a, &b, &c, &d) == 4)
			break;
	if (f)
		fclose(f);
	return d;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (getuid() != 0)
		fail("needs root");
	setfsgid(FSGID);
	if (setresuid(0, EUID, 0) < 0)
		fail("setresuid: %s", strerror(errno));
	setfsuid(0);
	if (fourth("Uid:") != 0 || fourth("Gid:") != FSGID)
		fail("setup: fsuid %u fsgid %u", fourth("Uid:"), fourth("Gid:"));
	test_ready(argv);
	test_wait();

	if (fourth("Uid:") != 0 || fourth("Gid:") != FSGID)
		fail("fsuid %u fsgid %u after restart, were 0 %u", fourth("Uid:"), fourth("Gid:"), FSGID);
	if (getuid() != 0 || geteuid() != EUID)
		fail("uid %u euid %u, were 0 %u", getuid(), geteuid(), EUID);
	pass();
}
