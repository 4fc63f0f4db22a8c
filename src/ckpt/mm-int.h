/* mm-int.h — what the memory parts of the checkpoint engine share (mm.c:
 * dump and page sums; mm_restore.c: restore). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "ckpt/ckpt-int.h"

#define FILL_PIECE (4UL << 20)          /* restore: at most this much per UFFDIO_COPY */
#define FILL_TWO_THREADS (32UL << 20)   /* a second copying thread for a VMA with this much data */

/* The "VmFlags:" of smaps line fl has flag two (two letters). */
bool ckpt_mm_has_vmflag(const char *fl, const char *two);
/* Progress of a long pass (ckpt_progress_fn): start, bytes done, end. */
void ckpt_mm_progress_start(const char *what, uint64_t total);
void ckpt_mm_progress_add(uint64_t bytes);
void ckpt_mm_progress_end(void);
/* Bytes reported so far, and back to an earlier count (a pass done again). */
uint64_t ckpt_mm_progress_done(void);
void ckpt_mm_progress_rewind(uint64_t done);
/* Note shared anonymous mapping v of process owner in shm (restored once, mapped by each). */
void ckpt_mm_shared_record(struct ckpt_shm_table *shm, pid_t owner, const Krg__Ckpt__Vma *v);
/* A mapping the kernel makes (vdso, vvar, vsyscall): not restored as data. */
bool ckpt_mm_special(const Krg__Ckpt__Vma *v);
/* A syscall run in the tracee; a failure is set in err. */
long ckpt_mm_sys(struct ckpt_tracee *t, struct ckpt_error *err, long nr, long a1, long a2, long a3, long a4, long a5,
		 long a6);
/* Check every page sum of v against pages (whole image: before a restore). */
int ckpt_mm_vma_check_all(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse, bool progress,
			  struct ckpt_error *err);
