// The pixel size an image file declares in its header, read without decoding
// it: a few hundred KB of PNG can declare 30000x30000 pixels, and a decoder
// allocates all of them before it looks further, so callers check the size
// first.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vs {

struct ImageSize {
  int64_t width = 0;
  int64_t height = 0;
};

// The size data (the start of an image file, or all of it) declares, for
// PNG, JPEG, BMP, WebP, TIFF, PNM (P1-P6) and Sun raster; nullopt for any
// other format and for a header that is damaged or cut short.
std::optional<ImageSize> image_size(std::string_view data);

}  // namespace vs
