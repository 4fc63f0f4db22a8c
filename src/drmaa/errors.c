/* errors.c — drmaa_strerror and the diagnosis buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include "drmaa/drmaa-int.h"

static const char *const messages[] = {
	[DRMAA_ERRNO_SUCCESS] = "success",
	[DRMAA_ERRNO_INTERNAL_ERROR] = "unexpected or internal DRMAA error",
	[DRMAA_ERRNO_DRM_COMMUNICATION_FAILURE] = "could not contact the DRM system (krgd)",
	[DRMAA_ERRNO_AUTH_FAILURE] = "the specified request is not processed successfully due to authorization failure",
	[DRMAA_ERRNO_INVALID_ARGUMENT] = "the input value for an argument is invalid",
	[DRMAA_ERRNO_NO_ACTIVE_SESSION] = "no active DRMAA session (drmaa_init was not called, or drmaa_exit was)",
	[DRMAA_ERRNO_NO_MEMORY] = "failed allocating memory",
	[DRMAA_ERRNO_INVALID_CONTACT_STRING] = "the contact string is not a valid krg session name",
	[DRMAA_ERRNO_DEFAULT_CONTACT_STRING_ERROR] = "DRMAA could not use the default contact string",
	[DRMAA_ERRNO_NO_DEFAULT_CONTACT_STRING_SELECTED] = "no default contact string was provided or selected",
	[DRMAA_ERRNO_DRMS_INIT_FAILED] = "initialization of the DRM system failed",
	[DRMAA_ERRNO_ALREADY_ACTIVE_SESSION] = "a DRMAA session is already active",
	[DRMAA_ERRNO_DRMS_EXIT_ERROR] = "disengagement from the DRM system failed",
	[DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT] = "the format of the job attribute value is invalid",
	[DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE] = "the value of the job attribute is invalid",
	[DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES] = "the value of this attribute conflicts with another one",
	[DRMAA_ERRNO_TRY_LATER] = "the DRM system could not accept the job now; try later",
	[DRMAA_ERRNO_DENIED_BY_DRM] = "the DRM system rejected the job",
	[DRMAA_ERRNO_INVALID_JOB] = "the job does not exist in this session (or was already reaped)",
	[DRMAA_ERRNO_RESUME_INCONSISTENT_STATE] = "the job is not suspended: cannot resume it",
	[DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE] = "the job is not running: cannot suspend it",
	[DRMAA_ERRNO_HOLD_INCONSISTENT_STATE] = "the job is not queued: cannot hold it",
	[DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE] = "the job is not on hold: cannot release it",
	[DRMAA_ERRNO_EXIT_TIMEOUT] = "time-out elapsed before the job(s) finished",
	[DRMAA_ERRNO_NO_RUSAGE] = "the job finished but no resource usage is available",
	[DRMAA_ERRNO_NO_MORE_ELEMENTS] = "no more elements in the vector",
};

const char *drmaa_strerror(int drmaa_errno)
{
	if (drmaa_errno < 0 || drmaa_errno >= DRMAA_NO_ERRNO || !messages[drmaa_errno])
		return "unknown DRMAA error code";
	return messages[drmaa_errno];
}

int drmaa_diag(char *buf, size_t len, int code, const char *fmt, ...)
{
	if (buf && len) {
		if (fmt) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(buf, len, fmt, ap);
			va_end(ap);
		} else
			snprintf(buf, len, "%s", drmaa_strerror(code));
	}
	return code;
}

int drmaa_errno_code(int neg_errno)
{
	switch (-neg_errno) {
	case 0: return DRMAA_ERRNO_SUCCESS;
	case ENOMEM: return DRMAA_ERRNO_NO_MEMORY;
	case EPERM:
	case EACCES: return DRMAA_ERRNO_AUTH_FAILURE;
	case ECONNREFUSED:
	case ENOENT:
	case ETIMEDOUT:
	case ECONNRESET:
	case EPIPE:
	case EHOSTUNREACH:
	case ENOTCONN: return DRMAA_ERRNO_DRM_COMMUNICATION_FAILURE;
	case EAGAIN:
	case EBUSY: return DRMAA_ERRNO_TRY_LATER;
	case ESRCH: return DRMAA_ERRNO_INVALID_JOB;
	default: return DRMAA_ERRNO_INTERNAL_ERROR;
	}
}
