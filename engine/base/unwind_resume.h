/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* unwind_resume.c: our objects' _Unwind_Resume follows the unwinder
 * libstdc++ raises exceptions with, which is not always the one a library
 * loaded later binds to (Debian's GStreamer brings in libunwind's). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* Whether libstdc++ raises exceptions through another library's unwinder
 * than the one in the global symbol scope, which libraries loaded from now
 * on bind their cleanups' _Unwind_Resume to (a Python host that imported
 * pandas before GStreamer). The modules we open then search their own
 * dependencies first (RTLD_DEEPBIND), which hold libstdc++'s unwinder. */
__attribute__((visibility("hidden"))) int vs_unwinder_split(void);

#ifdef __cplusplus
}
#endif
