// SPDX-License-Identifier: LGPL-2.1-or-later
// vs::read_image_header against files OpenCV writes (the image-codec test
// uses PIL's), odd sizes so width and height cannot be swapped unnoticed;
// cut-short and mutated headers give no size or a size, never a crash.
#include <glib.h>

#include <opencv2/imgcodecs.hpp>

#include <random>
#include <string>
#include <vector>

#include "engine/base/image_header.h"

namespace {

vs::ImageHeader
header (const std::string &data)
{
  return vs::read_image_header (reinterpret_cast<
                                    const uint8_t *> (data.data ()),
      data.size ());
}

std::string
encode (const char *ext, const cv::Mat &image, std::vector<int> params = {})
{
  std::vector<uchar> out;
  g_assert_true (cv::imencode (ext, image, out, params));
  return std::string (out.begin (), out.end ());
}

void
test_formats ()
{
  const cv::Mat rgb (37, 53, CV_8UC3, cv::Scalar (10, 20, 30));
  const cv::Mat grey (37, 53, CV_8UC1, cv::Scalar (99));
  struct Case
  {
    const char *what;
    std::string data;
  };
  std::vector<Case> cases = {
      {"png", encode (".png", rgb)},
      {"jpeg", encode (".jpg", rgb)},
      {"progressive jpeg",
          encode (".jpg", rgb, {cv::IMWRITE_JPEG_PROGRESSIVE, 1})},
      {"bmp", encode (".bmp", rgb)},
      {"ppm", encode (".ppm", rgb)},
      {"pgm", encode (".pgm", grey)},
      {"pbm ascii", encode (".pbm", grey, {cv::IMWRITE_PXM_BINARY, 0})},
  };
  if (cv::haveImageWriter (".webp")) {
    cases.push_back ({"webp lossy",
        encode (".webp", rgb, {cv::IMWRITE_WEBP_QUALITY, 80})});
    cases.push_back ({"webp lossless",
        encode (".webp", rgb, {cv::IMWRITE_WEBP_QUALITY, 101})});
  }
  if (cv::haveImageWriter (".tiff"))
    cases.push_back ({"tiff", encode (".tiff", rgb)});
  for (const Case &c : cases) {
    const vs::ImageHeader h = header (c.data);
    if (!h.has_size () || h.width != 53 || h.height != 37)
      g_error ("%s: got %s", c.what,
          (std::to_string (h.width) + "x" + std::to_string (h.height))
              .c_str ());
    // Each header cut short, and mutated, is read safely.
    for (size_t n = 0; n < std::min<size_t> (c.data.size (), 2048); ++n)
      header (c.data.substr (0, n));
    std::mt19937 rng (3);
    for (int k = 0; k < 2000; ++k) {
      std::string bad =
          c.data.substr (0, std::min<size_t> (c.data.size (), 512));
      for (int f = 0; f < 3; ++f)
        bad[rng () % bad.size ()] = char (rng ());
      header (bad);
    }
  }
}

void
test_declared_size ()
{
  // What a 875 KB PNG of 30000 x 30000 says before its pixels.
  std::string png ("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x75\x30\0\0\x75\x30\x08"
                   "\x02\0\0\0",
      29);
  const vs::ImageHeader h = header (png);
  g_assert_true (h.has_size ());
  g_assert_cmpint (h.width, ==, 30000);
  g_assert_cmpint (h.height, ==, 30000);
  g_assert_false (header ("GIF89a....").has_size ());
  g_assert_false (header ("").has_size ());
  g_assert_false (header (
      std::string ("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\0\0\0\0\x01", 24))
                      .has_size ()); // zero width
}

} // namespace

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, nullptr);
  g_test_add_func ("/image-header/formats", test_formats);
  g_test_add_func ("/image-header/declared-size", test_declared_size);
  return g_test_run ();
}
