/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The C interface of libvisualsearch-codecs.so, the module that holds
// OpenCV's image codecs (see engine/base/image_codec.h, its only caller). Plain C
// types only, so the plugin and a module of the same version agree on every
// byte; the module never throws and never hands out memory the plugin must
// free: it writes into buffers the caller's allocator gives it.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// Bumped whenever a signature below changes.
#define VS_CODECS_ABI_VERSION 2

// Returns a buffer of size bytes owned by the caller, or nullptr.
typedef uint8_t* (*VsCodecsAlloc)(void* context, size_t size);

typedef int (*VsCodecsAbiVersion)(void);

// Decodes an encoded still image to packed RGB rows (width * 3 bytes each)
// in a buffer from alloc, with its EXIF orientation applied. reduce (1, 2, 4
// or 8) decodes a JPEG at that fraction of its size; shorter_side > 0 then
// shrinks a picture whose shorter side is longer, by area averaging, before it
// is copied out. Returns 0, or -1 with a sentence in error.
typedef int (*VsCodecsDecode)(const uint8_t* data, size_t size, int reduce, int shorter_side,
                              int* width, int* height, VsCodecsAlloc alloc, void* context,
                              char* error, size_t error_size);

// Encodes packed RGB rows as a baseline JPEG into a buffer from alloc (called
// once, with the encoded size). Returns 0, or -1 with a sentence in error.
typedef int (*VsCodecsEncodeJpeg)(const uint8_t* rgb, int width, int height, int quality,
                                  VsCodecsAlloc alloc, void* context, char* error,
                                  size_t error_size);
}
