/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* _Unwind_Resume for the plugin and the modules it opens, linked into each
 * of them with hidden visibility so that the calls the compiler emits at the
 * end of every cleanup (destructors run while an exception passes) land here
 * rather than on whichever _Unwind_Resume the process's global scope holds.
 *
 * Why: Debian's libgstreamer-1.0 links libunwind.so.8, which exports its own
 * _Unwind_* functions beside libgcc_s's. libstdc++'s __cxa_throw raises every
 * C++ exception through the _Unwind_RaiseException libstdc++ was bound to,
 * and its personality routine reads the unwinder's context through the
 * _Unwind_Get* functions it was bound to; both are libunwind's when
 * libstdc++ is loaded after GStreamer (gst-launch-1.0, a C application), but
 * libgcc_s's when a host loaded libstdc++ first with immediate binding (a
 * Python that imported pandas or numpy before PyGObject loaded GStreamer into
 * the global scope). Our objects, loaded later, would bind _Unwind_Resume to
 * libunwind in both cases, so in the second one the first exception with a
 * cleanup on its way aborted the process ("terminate called after throwing").
 * Here _Unwind_Resume goes to the library whose _Unwind_RaiseException
 * libstdc++ calls, whichever that is: the one that raised the exception. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/unwind_resume.h"

#if __ELF_NATIVE_CLASS == 64
#define RELA_SYM ELF64_R_SYM
#else
#define RELA_SYM ELF32_R_SYM
#endif

/* Not <unwind.h>: its declaration of _Unwind_Resume would keep the default
 * visibility, and the definition below must stay hidden. */
struct _Unwind_Exception;

typedef void (*resume_fn)(struct _Unwind_Exception*);

static _Atomic(resume_fn) resolved;

/* The address libstdc++'s relocation of NAME holds (its GOT slot), or NULL
 * when libstdc++ is not loaded or does not import NAME. */
static void* bound_address(struct link_map* map, const char* name) {
  const ElfW(Sym)* symtab = NULL;
  const char* strtab = NULL;
  const ElfW(Rela) * tables[2] = {NULL, NULL};
  size_t sizes[2] = {0, 0};
  for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; d++) {
    /* glibc relocates these pointers in place, other loaders may not. */
    ElfW(Addr) p = d->d_un.d_ptr;
    if (p < map->l_addr) p += map->l_addr;
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = (const ElfW(Sym)*)p; break;
      case DT_STRTAB: strtab = (const char*)p; break;
      case DT_JMPREL: tables[0] = (const ElfW(Rela)*)p; break;
      case DT_PLTRELSZ: sizes[0] = d->d_un.d_val; break;
      case DT_RELA: tables[1] = (const ElfW(Rela)*)p; break;
      case DT_RELASZ: sizes[1] = d->d_un.d_val; break;
      default: break;
    }
  }
  if (symtab == NULL || strtab == NULL) return NULL;
  for (int t = 0; t < 2; t++) {
    if (tables[t] == NULL) continue;
    for (size_t i = 0; i < sizes[t] / sizeof(ElfW(Rela)); i++) {
      const ElfW(Rela)* r = &tables[t][i];
      size_t sym = RELA_SYM(r->r_info);
      if (sym != 0 && strcmp(strtab + symtab[sym].st_name, name) == 0)
        return *(void**)(map->l_addr + r->r_offset);
    }
  }
  return NULL;
}

/* The _Unwind_RaiseException libstdc++ calls, or NULL when that is not
 * known yet (libstdc++ not loaded, or bound lazily and nothing thrown yet:
 * then the dynamic linker will take the global scope's, as for our objects). */
static void* libstdcxx_raise(void) {
  void* self = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (self == NULL) return NULL;
  struct link_map* map = NULL;
  void* raise = NULL;
  if (dlinfo(self, RTLD_DI_LINKMAP, &map) == 0 && map != NULL) {
    raise = bound_address(map, "_Unwind_RaiseException");
    Dl_info info;
    if (raise != NULL && (dladdr(raise, &info) == 0 || info.dli_fbase == (void*)map->l_addr))
      raise = NULL; /* still libstdc++'s own PLT: not bound yet */
  }
  dlclose(self);
  return raise;
}

/* The base address of the object ADDRESS lies in, or NULL. */
static void* object_of(void* address) {
  Dl_info info;
  return address != NULL && dladdr(address, &info) != 0 ? info.dli_fbase : NULL;
}

int vs_unwinder_split(void) {
  void* raise = libstdcxx_raise();
  return raise != NULL &&
         object_of(raise) != object_of(dlsym(RTLD_DEFAULT, "_Unwind_RaiseException"));
}

/* The _Unwind_Resume of the library libstdc++'s _Unwind_RaiseException is
 * bound to. By the time a cleanup calls _Unwind_Resume, __cxa_throw has
 * called _Unwind_RaiseException, so a lazily bound slot is resolved too. */
static resume_fn find_resume(void) {
  Dl_info info;
  void* raise = libstdcxx_raise();
  if (raise != NULL && dladdr(raise, &info) != 0 && info.dli_fname != NULL) {
    void* owner = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    resume_fn fn = owner != NULL ? (resume_fn)dlsym(owner, "_Unwind_Resume") : NULL;
    if (owner != NULL) dlclose(owner);
    if (fn != NULL) return fn;
  }
  /* Not found (a static libstdc++, another loader): what the dynamic linker
   * would have bound without this file. */
  return (resume_fn)dlsym(RTLD_DEFAULT, "_Unwind_Resume");
}

__attribute__((visibility("hidden"))) void _Unwind_Resume(struct _Unwind_Exception* exception) {
  resume_fn fn = atomic_load_explicit(&resolved, memory_order_acquire);
  if (fn == NULL) {
    fn = find_resume();
    if (fn == NULL) abort();
    atomic_store_explicit(&resolved, fn, memory_order_release);
  }
  fn(exception);
  abort(); /* _Unwind_Resume does not return */
}
