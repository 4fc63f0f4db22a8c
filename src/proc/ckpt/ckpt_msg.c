/* ckpt_msg.c — checks of the ckpt.* messages peers send (ckpt_msg.h). */
#include <string.h>
#include "proc/ckpt/ckpt_msg.h"

bool ckpt_file_name_ok(const char *n)
{
	return n[0] && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/');
}

bool ckpt_dump_valid(const Krg__Ckptsvc__Dump *d)
{
	return d->has_uid;
}

bool ckpt_restart_valid(const Krg__Ckptsvc__Restart *q)
{
	return q->has_uid;
}

bool ckpt_file_valid(const Krg__Ckptsvc__File *f)
{
	return ckpt_file_name_ok(f->name) && f->data.len <= CKPT_XFER_CHUNK && f->offset <= CKPT_XFER_MAX;
}
