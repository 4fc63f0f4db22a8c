/* inotify: watches on a directory (IN_CREATE, wd 1) and a file
 * (IN_MODIFY, wd 3; wd 2 was removed before the checkpoint, a gap), the
 * fd non-blocking. After restart: the same wds, events for both, no
 * stray event from the restore. */
#include <errno.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	mkdir("watched", 0755);
	mkdir("gone", 0755);
	close(open("file", O_WRONLY | O_CREAT, 0644));
	int in = inotify_init1(IN_NONBLOCK);
	if (in < 0)
		fail("inotify_init1");
	int w1 = inotify_add_watch(in, "watched", IN_CREATE);
	int w2 = inotify_add_watch(in, "gone", IN_CREATE);
	int w3 = inotify_add_watch(in, "file", IN_MODIFY);
	if (w1 != 1 || w2 != 2 || w3 != 3 || inotify_rm_watch(in, w2) < 0)
		fail("watches %d %d %d", w1, w2, w3);
	char buf[4096];
	while (read(in, buf, sizeof(buf)) > 0)  /* the IN_IGNORED of wd 2 */
		;
	test_ready(argv);
	test_wait();
	if (!(fcntl(in, F_GETFL) & O_NONBLOCK))
		fail("IN_NONBLOCK lost");
	if (read(in, buf, sizeof(buf)) != -1 || errno != EAGAIN)
		fail("an event was queued by the restore");
	if (inotify_add_watch(in, "watched", IN_CREATE) != 1 || inotify_add_watch(in, "file", IN_MODIFY) != 3)
		fail("watches did not come back with their wds");
	unlink("watched/new");  /* left by an earlier restart of the same image */
	close(open("watched/new", O_WRONLY | O_CREAT, 0644));
	int f = open("file", O_WRONLY | O_APPEND);
	if (f < 0 || write(f, "x", 1) != 1)
		fail("write");
	close(f);
	ssize_t n = read(in, buf, sizeof(buf));
	int saw_create = 0, saw_modify = 0;
	for (char *p = buf; n > 0 && p < buf + n;) {
		struct inotify_event *e = (struct inotify_event *)p;
		if (e->wd == 1 && (e->mask & IN_CREATE) && e->len && !strcmp(e->name, "new"))
			saw_create = 1;
		else if (e->wd == 3 && (e->mask & IN_MODIFY))
			saw_modify = 1;
		else
			fail("unexpected event wd %d mask %#x", e->wd, e->mask);
		p += sizeof(*e) + e->len;
	}
	if (!saw_create || !saw_modify)
		fail("events: create %d modify %d", saw_create, saw_modify);
	pass();
}
