/* ckpt_msg.h — the checks of the ckpt.* messages a peer sends, apart from
 * the work they ask for (whether the caller may dump or restart is the
 * worker's business). Pure, so that tests/fuzz/fuzz_peer.c runs the very
 * checks ckpt_service.c runs. */
#pragma once
#include <stdbool.h>
#include "proto/ckptsvc.pb-c.h"

#define CKPT_XFER_CHUNK (1u << 20)       /* one ckpt.file piece */
#define CKPT_XFER_MAX (64ull << 30)      /* a received directory's total size */

/* A file name of an image directory: not empty, no '/', not "." or "..". */
bool ckpt_file_name_ok(const char *name);
/* ckpt.dump and ckpt.restart from a peer carry the caller's uid (which the
 * sending krgd learnt from SO_PEERCRED). */
bool ckpt_dump_valid(const Krg__Ckptsvc__Dump *d);
bool ckpt_restart_valid(const Krg__Ckptsvc__Restart *q);
/* ckpt.file: a good name, a piece of at most CKPT_XFER_CHUNK at an offset
 * inside the largest directory accepted. */
bool ckpt_file_valid(const Krg__Ckptsvc__File *f);
