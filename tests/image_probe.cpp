// SPDX-License-Identifier: LGPL-2.1-or-later
// Drives the engine's image reading for test_image_codec.py:
//
//   image-probe header FILE               format=... width=... height=...
//   image-probe prefixes FILE             one line per prefix length n of the file
//                                          (n = 0..min(size, 4096), then the size):
//                                          "n format width height"
//   image-probe decode FILE MAX_PIXELS OUT width=... height=... (OUT: packed RGB),
//                                          or error=REASON message=...
//   image-probe encode RAW W H QUALITY OUT  a JPEG of the packed RGB in RAW
//   image-probe folder ROOT LABEL_FROM [flat]
//                                          label-names=a|b, then "file LABEL RELATIVE"
//                                          and "skipped RELATIVE: REASON" lines
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/base/image_codec.h"
#include "engine/dataset/image_folder.h"
#include "engine/base/image_header.h"

namespace {

std::vector<uint8_t>
slurp (const char *path)
{
  std::ifstream in (path, std::ios::binary);
  return {std::istreambuf_iterator<char> (in),
      std::istreambuf_iterator<char> ()};
}

void
print_header (const vs::ImageHeader &header)
{
  std::printf ("format=%s width=%llu height=%llu\n",
      vs::image_format_name (header.format), (unsigned long long) header.width,
      (unsigned long long) header.height);
}

const char *
reason_name (vs::ImageError::Reason reason)
{
  switch (reason) {
    case vs::ImageError::Reason::Unreadable:
      return "unreadable";
    case vs::ImageError::Reason::Empty:
      return "empty";
    case vs::ImageError::Reason::NotAnImage:
      return "not-an-image";
    case vs::ImageError::Reason::TooLarge:
      return "too-large";
    case vs::ImageError::Reason::Corrupt:
      return "corrupt";
  }
  return "?";
}

} // namespace

int
main (int argc, char **argv)
{
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "header" && argc == 3) {
      const std::vector<uint8_t> bytes = slurp (argv[2]);
      print_header (vs::read_image_header (bytes.data (), bytes.size ()));
    } else if (command == "prefixes" && argc == 3) {
      const std::vector<uint8_t> bytes = slurp (argv[2]);
      std::vector<size_t> lengths;
      for (size_t n = 0; n <= std::min<size_t> (bytes.size (), 4096); ++n)
        lengths.push_back (n);
      if (bytes.size () > 4096)
        lengths.push_back (bytes.size ());
      for (size_t n : lengths) {
        const vs::ImageHeader h = vs::read_image_header (bytes.data (), n);
        std::printf ("%zu %s %llu %llu\n", n, vs::image_format_name (h.format),
            (unsigned long long) h.width, (unsigned long long) h.height);
      }
    } else if (command == "decode" && argc == 5) {
      try {
        const vs::RgbImage image =
            vs::read_image (argv[2], std::strtoull (argv[3], nullptr, 10));
        std::ofstream (argv[4], std::ios::binary)
            .write (reinterpret_cast<const char *> (image.pixels.data ()),
                image.pixels.size ());
        std::printf ("width=%d height=%d\n", image.width, image.height);
      } catch (const vs::ImageError &e) {
        std::printf ("error=%s message=%s\n", reason_name (e.reason ()),
            e.what ());
      }
    } else if (command == "encode" && argc == 7) {
      vs::RgbImage image;
      image.pixels = slurp (argv[2]);
      image.width = std::atoi (argv[3]);
      image.height = std::atoi (argv[4]);
      const std::vector<uint8_t> jpeg =
          vs::encode_jpeg (image, std::atoi (argv[5]));
      std::ofstream (argv[6], std::ios::binary)
          .write (reinterpret_cast<const char *> (jpeg.data ()), jpeg.size ());
    } else if (command == "folder" && (argc == 4 || argc == 5)) {
      vs::ImageFolderOptions options;
      vs::parse_label_from (argv[3], &options);
      options.recursive = argc == 4;
      const vs::ImageFolder folder = vs::ImageFolder::scan (argv[2], options);
      std::string names;
      for (const std::string &name : folder.label_names ())
        names += (names.empty () ? "" : "|") + name;
      std::printf ("label-names=%s\n", names.c_str ());
      for (const vs::FolderFile &file : folder.files ())
        std::printf ("file %d %s\n", file.label, file.relative.c_str ());
      for (const vs::SkippedEntry &entry : folder.skipped ())
        std::printf ("skipped %s: %s\n", entry.relative.c_str (),
            entry.reason.c_str ());
    } else {
      std::fprintf (stderr,
          "usage: see the comment at the top of image_probe.cpp\n");
      return 2;
    }
  } catch (const std::exception &e) {
    std::printf ("error=%s\n", e.what ());
    return 1;
  }
  return 0;
}
