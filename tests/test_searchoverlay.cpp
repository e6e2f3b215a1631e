// SPDX-License-Identifier: LGPL-2.1-or-later
/* searchoverlay: in every supported format, the strip of thumbnails appears
 * along the chosen edge, shows the gallery images (an image file and a CIFAR
 * record written here), and no pixel outside the strip changes. Sources that
 * are FIFOs, directories or images too large to decode get a blank tile and
 * one warning each; a label of any length is cut to fit with a few
 * measurements. With the index property, thumbnails come from the catalog
 * when it has them, and from the files otherwise. */
/* OpenCV first: check's fail() macro would clash with its declarations. */
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gst/visualsearch/visualsearchmeta.h>

#include "engine/index/catalog.h"
#include "engine/render/result_strip.h"

static const int kWidth = 320;
static const int kHeight = 240;
static const int kThumb = 32;
/* Thumbnail, two caption lines and margins fit well within this. */
static const int kBand = 2 * kThumb + 8;

static gchar *tmp_dir;
static std::string red_png;
static std::string cifar_dir;

/* A solid red PNG, and a CIFAR-10 binary batch whose record 3 is solid blue. */
static void
setup (void)
{
  tmp_dir = g_dir_make_tmp ("searchoverlay-XXXXXX", NULL);
  red_png = std::string (tmp_dir) + "/red.png";
  fail_unless (cv::imwrite (red_png,
      cv::Mat (20, 30, CV_8UC3, cv::Scalar (0, 0, 255))));

  cifar_dir = std::string (tmp_dir) + "/cifar-10-batches-bin";
  g_mkdir (cifar_dir.c_str (), 0755);
  std::ofstream meta (cifar_dir + "/batches.meta.txt");
  for (const char *name : {"airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"})
    meta << name << "\n";
  /* The directory form needs all five training batches; keep them tiny. */
  for (int b = 1; b <= 5; b++) {
    std::ofstream batch (cifar_dir + "/data_batch_" + std::to_string (b)
            + ".bin",
        std::ios::binary);
    for (int record = 0; record < (b == 1 ? 10 : 1); record++) {
      std::vector<char> bytes (1 + 3072, 0);
      bytes[0] = (char) record;
      const bool blue = b == 1 && record == 3;
      for (int plane = 0; plane < 3; plane++)
        for (int i = 0; i < 1024; i++)
          bytes[1 + plane * 1024 + i] =
              (char) (blue && plane == 2 ? 255 : (blue ? 0 : 100));
      batch.write (bytes.data (), bytes.size ());
    }
  }
}

static void
teardown (void)
{
  gchar *cmd = g_strdup_printf ("rm -rf '%s'", tmp_dir);
  fail_unless (system (cmd) == 0);
  g_free (cmd);
  g_free (tmp_dir);
}

/* A mid-grey frame. */
static GstBuffer *
grey_frame (const GstVideoInfo *info)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  GstVideoFrame frame;
  fail_unless (gst_video_frame_map (&frame, info, buf, GST_MAP_WRITE));
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    guint8 *data = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    memset (data, 128,
        GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p)
            * GST_VIDEO_FRAME_COMP_HEIGHT (&frame, p == 0 ? 0 : 1));
  }
  gst_video_frame_unmap (&frame);
  return buf;
}

static void
add_neighbors (GstBuffer *buf)
{
  GstVisualSearchNeighbor nb[3] = {
      {0, 0.0f, 3, (gchar *) "red", (gchar *) red_png.c_str ()},
      {3, 0.25f, 3, (gchar *) "cat", (gchar *) "cifar10/train/3"},
      {7, 0.5f, -1, NULL, NULL},
  };
  gst_buffer_add_visualsearch_neighbors_meta (buf, GST_VISUALSEARCH_METRIC_L2,
      3, nb);
}

static bool
in_band (const char *position, int x, int y)
{
  if (g_str_equal (position, "top"))
    return y < kBand;
  if (g_str_equal (position, "left"))
    return x < kBand;
  if (g_str_equal (position, "right"))
    return x >= kWidth - kBand;
  return y >= kHeight - kBand;
}

/* Every byte of every plane outside the band is as it was; returns how many
 * pixels of the first plane changed inside it. */
static int
check_only_band_changed (const GstVideoInfo *info, GstBuffer *before,
    GstBuffer *after, const char *position)
{
  GstVideoFrame a, b;
  int changed = 0;
  fail_unless (gst_video_frame_map (&a, info, before, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&b, info, after, GST_MAP_READ));
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&a); p++) {
    const int comp = p == 0 ? 0 : (int) p;
    const int comp_w = GST_VIDEO_FRAME_COMP_WIDTH (&a, comp);
    const int comp_h = GST_VIDEO_FRAME_COMP_HEIGHT (&a, comp);
    const int pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (&a, comp);
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE (&a, p);
    const guint8 *pa = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&a, p);
    const guint8 *pb = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&b, p);
    for (int row = 0; row < comp_h; row++) {
      for (int col = 0; col < comp_w; col++) {
        const int x = col * kWidth / comp_w;
        const int y = row * kHeight / comp_h;
        const bool differs = memcmp (pa + row * stride + col * pstride,
                                 pb + row * stride + col * pstride, pstride)
            != 0;
        if (differs && !in_band (position, x, y))
          fail ("%s: pixel (%d,%d) of plane %u changed outside the strip",
              position, x, y, p);
        if (differs && p == 0)
          changed++;
      }
    }
  }
  gst_video_frame_unmap (&a);
  gst_video_frame_unmap (&b);
  return changed;
}

static cv::Mat
to_rgb (const GstVideoInfo *info, GstBuffer *buf)
{
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  cv::Mat rgb;
  switch (GST_VIDEO_INFO_FORMAT (info)) {
    case GST_VIDEO_FORMAT_I420:
      cv::cvtColor (cv::Mat (kHeight * 3 / 2, kWidth, CV_8UC1, map.data), rgb,
          cv::COLOR_YUV2RGB_I420);
      break;
    case GST_VIDEO_FORMAT_NV12:
      cv::cvtColor (cv::Mat (kHeight * 3 / 2, kWidth, CV_8UC1, map.data), rgb,
          cv::COLOR_YUV2RGB_NV12);
      break;
    case GST_VIDEO_FORMAT_BGR:
      cv::cvtColor (cv::Mat (kHeight, kWidth, CV_8UC3, map.data), rgb,
          cv::COLOR_BGR2RGB);
      break;
    case GST_VIDEO_FORMAT_RGBx:
      cv::cvtColor (cv::Mat (kHeight, kWidth, CV_8UC4, map.data), rgb,
          cv::COLOR_RGBA2RGB);
      break;
    case GST_VIDEO_FORMAT_BGRx:
      cv::cvtColor (cv::Mat (kHeight, kWidth, CV_8UC4, map.data), rgb,
          cv::COLOR_BGRA2RGB);
      break;
    default:
      cv::Mat (kHeight, kWidth, CV_8UC3, map.data).copyTo (rgb);
      break;
  }
  gst_buffer_unmap (buf, &map);
  return rgb;
}

static int
count_color (const cv::Mat &rgb, int r, int g, int b)
{
  int n = 0;
  for (int y = 0; y < rgb.rows; y++)
    for (int x = 0; x < rgb.cols; x++) {
      const cv::Vec3b &px = rgb.at<cv::Vec3b> (y, x);
      if (std::abs (px[0] - r) < 60 && std::abs (px[1] - g) < 60
          && std::abs (px[2] - b) < 60)
        n++;
    }
  return n;
}

static void
check_format (const char *format, const char *position)
{
  GstVideoInfo info;
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
                                 "framerate=30/1",
      format, kWidth, kHeight);
  GstCaps *c = gst_caps_from_string (caps);
  fail_unless (gst_video_info_from_caps (&info, c));
  gst_caps_unref (c);

  GstHarness *h = gst_harness_new ("searchoverlay");
  g_object_set (h->element, "thumb-size", kThumb, "dataset", cifar_dir.c_str (),
      NULL);
  gst_util_set_object_arg (G_OBJECT (h->element), "position", position);
  gst_harness_set_caps_str (h, caps, caps);
  g_free (caps);

  GstBuffer *input = grey_frame (&info);
  GstBuffer *reference = gst_buffer_copy_deep (input);
  add_neighbors (input);
  GstBuffer *out = gst_harness_push_and_pull (h, input);

  const int changed = check_only_band_changed (&info, reference, out, position);
  fail_unless (changed >= 3 * kThumb * kThumb, "%s/%s: only %d pixels changed",
      format, position, changed);
  const cv::Mat rgb = to_rgb (&info, out);
  fail_unless (count_color (rgb, 255, 0, 0) >= kThumb * kThumb * 8 / 10,
      "%s/%s: the image file's thumbnail is missing", format, position);
  fail_unless (count_color (rgb, 0, 0, 255) >= kThumb * kThumb * 8 / 10,
      "%s/%s: the CIFAR record's thumbnail is missing", format, position);

  /* Without neighbours the frame passes untouched, not even copied. */
  GstBuffer *plain = grey_frame (&info);
  GstBuffer *plain_out = gst_harness_push_and_pull (h, gst_buffer_ref (plain));
  fail_unless (plain_out == plain);
  fail_unless_equals_int (check_only_band_changed (&info, reference, plain_out,
                              position),
      0);
  gst_buffer_unref (plain_out);
  gst_buffer_unref (plain);

  gst_buffer_unref (out);
  gst_buffer_unref (reference);
  gst_harness_teardown (h);
}

GST_START_TEST (test_formats)
{
  for (const char *format : {"RGB", "BGR", "RGBx", "BGRx", "I420", "NV12"})
    check_format (format, "bottom");
}

GST_END_TEST;

GST_START_TEST (test_positions)
{
  for (const char *position : {"top", "bottom", "left", "right"}) {
    check_format ("RGB", position);
    check_format ("I420", position);
  }
}

GST_END_TEST;

GST_START_TEST (test_frame_too_small)
{
  /* No room for one tile: the frame is left as it was, no error. */
  GstHarness *h = gst_harness_new ("searchoverlay");
  g_object_set (h->element, "thumb-size", 128, NULL);
  gst_harness_set_caps_str (h,
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1",
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1");
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 32 * 32 * 3, NULL);
  gst_buffer_memset (buf, 0, 7, 32 * 32 * 3);
  add_neighbors (buf);
  GstBuffer *out = gst_harness_push_and_pull (h, buf);
  GstMapInfo map;
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  for (gsize i = 0; i < map.size; i++)
    fail_unless_equals_int (map.data[i], 7);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_persist)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, kWidth, kHeight);
  GstHarness *h = gst_harness_new ("searchoverlay");
  g_object_set (h->element, "thumb-size", kThumb, "persist", TRUE, NULL);
  gst_harness_set_caps_str (h,
      "video/x-raw,format=RGB,width=320,height=240,framerate=30/1",
      "video/x-raw,format=RGB,width=320,height=240,framerate=30/1");

  GstBuffer *reference = grey_frame (&info);
  GstBuffer *with = grey_frame (&info);
  add_neighbors (with);
  GstBuffer *first = gst_harness_push_and_pull (h, with);

  /* A frame the embedder skipped shows the same strip. */
  GstBuffer *second = gst_harness_push_and_pull (h, grey_frame (&info));
  fail_unless (check_only_band_changed (&info, reference, second, "bottom")
      >= 3 * kThumb * kThumb);
  GstMapInfo map;
  fail_unless (gst_buffer_map (first, &map, GST_MAP_READ));
  fail_unless (gst_buffer_memcmp (second, 0, map.data, map.size) == 0);
  gst_buffer_unmap (first, &map);

  /* A flush forgets it. */
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&segment));
  GstBuffer *third = gst_harness_push_and_pull (h, grey_frame (&info));
  fail_unless_equals_int (check_only_band_changed (&info, reference, third,
                              "bottom"),
      0);

  gst_buffer_unref (first);
  gst_buffer_unref (second);
  gst_buffer_unref (third);
  gst_buffer_unref (reference);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The longest prefix that fits, found the slow way. */
static std::string
fit_by_dropping (std::string text, int width,
    const std::function<int (std::string_view)> &measure)
{
  while (!text.empty () && measure (text) > width) {
    char dropped;
    do {
      dropped = text.back ();
      text.pop_back ();
    } while (!text.empty () && (dropped & 0xc0) == 0x80);
  }
  return text;
}

GST_START_TEST (test_fit_text)
{
  int calls = 0;
  size_t longest = 0;
  const auto measure = [&] (std::string_view text) {
    calls++;
    longest = std::max (longest, text.size ());
    int baseline;
    return cv::getTextSize (std::string (text), cv::FONT_HERSHEY_SIMPLEX, 0.3,
        1, &baseline)
        .width;
  };

  /* A 32,000-character label at the narrowest thumbnails: the old loop
   * measured 32,000 ever shorter prefixes, 6.6 s per frame. */
  const std::string label (32000, 'W');
  const std::string fitted = vs::fit_text (label, 16, measure);
  fail_unless (!fitted.empty () && measure (fitted) <= 16
      && measure (fitted + "W") > 16);
  calls = 0;
  longest = 0;
  vs::fit_text (label, 16, measure);
  const int bound = 2 * (int) std::ceil (std::log2 (32000.0)) + 2;
  fail_unless (calls <= bound, "%d measurements, want at most %d", calls,
      bound);
  fail_unless (longest <= 2 * (fitted.size () + 1),
      "measured %zu characters for a %zu character fit", longest,
      fitted.size ());

  /* Same answer as the slow way, never cutting a UTF-8 sequence. */
  for (const char *text : {"", "a", "airplane", "automobile and more",
           "caf\xc3\xa9 \xe2\x98\x83\xe2\x98\x83\xe2\x98\x83 \xf0\x9d\x84\x9e",
           "\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83"})
    for (int width : {0, 5, 16, 40, 100, 1000})
      fail_unless (vs::fit_text (text, width, measure)
              == fit_by_dropping (text, width, measure),
          "'%s' at %d", text, width);
}

GST_END_TEST;

/* A width x height solid red PNG, written row by row: far too big to build
 * in memory as an image, yet small on disk. */
static void
write_red_png (const std::string &path, uint32_t width, uint32_t height)
{
  std::ofstream out (path, std::ios::binary);
  const auto chunk = [&] (const char *type, const std::string &data) {
    const std::string body = std::string (type, 4) + data;
    const uint32_t crc = crc32 (0, (const Bytef *) body.data (), body.size ());
    for (uint32_t v : {(uint32_t) data.size (), crc}) {
      const char be[4] = {(char) (v >> 24), (char) (v >> 16), (char) (v >> 8),
          (char) v};
      if (v == crc)
        out.write (body.data (), body.size ());
      out.write (be, 4);
    }
  };
  std::string ihdr;
  for (uint32_t v : {width, height})
    for (int shift : {24, 16, 8, 0})
      ihdr.push_back ((char) (v >> shift));
  ihdr += std::string ("\x08\x02\x00\x00\x00", 5); /* 8-bit RGB */
  out.write ("\x89PNG\r\n\x1a\n", 8);
  chunk ("IHDR", ihdr);

  /* Row 0 with the Sub filter, the rest with Up: all but one pixel is zero. */
  z_stream z = {};
  fail_unless (deflateInit (&z, 6) == Z_OK);
  std::string row (1 + 3 * (size_t) width, '\0'), idat;
  std::vector<unsigned char> buf (1 << 16);
  for (uint32_t y = 0; y < height; y++) {
    row[0] = y == 0 ? 1 : 2;
    row[1] = y == 0 ? (char) 255 : 0;
    z.next_in = (Bytef *) row.data ();
    z.avail_in = row.size ();
    const int flush = y + 1 == height ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = buf.data ();
      z.avail_out = buf.size ();
      deflate (&z, flush);
      idat.append ((const char *) buf.data (), buf.size () - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd (&z);
  chunk ("IDAT", idat);
  chunk ("IEND", "");
}

/* Pushes two frames with these neighbours; returns the warnings posted,
 * after checking that each frame shows `red` thumbnails of red.png and
 * `green` green ones. searched: the index a faisssearch upstream would name
 * in its sticky event (none when NULL). */
static std::vector<std::string>
draw_twice (const std::vector<GstVisualSearchNeighbor> &nb, int red,
    const char *index = NULL, int green = 0, const char *searched = NULL)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, kWidth, kHeight);
  GstHarness *h = gst_harness_new ("searchoverlay");
  g_object_set (h->element, "thumb-size", kThumb, "max-thumbs", 8, "index",
      index, NULL);
  gst_harness_set_caps_str (h,
      "video/x-raw,format=RGB,width=320,height=240,framerate=30/1",
      "video/x-raw,format=RGB,width=320,height=240,framerate=30/1");
  if (searched)
    fail_unless (gst_harness_push_event (h,
        gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
            gst_structure_new ("visualsearch-index", "index", G_TYPE_STRING,
                searched, "catalog", G_TYPE_STRING,
                vs::catalog_path_for (searched).c_str (), NULL))));
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);

  std::vector<std::string> warnings;
  for (int frame = 0; frame < 2; frame++) {
    GstBuffer *buf = grey_frame (&info);
    gst_buffer_add_visualsearch_neighbors_meta (buf, GST_VISUALSEARCH_METRIC_L2,
        nb.size (), nb.data ());
    GstBuffer *out = gst_harness_push_and_pull (h, buf);
    fail_unless (out != NULL);
    const int n = count_color (to_rgb (&info, out), 255, 0, 0);
    fail_unless (n >= red * kThumb * kThumb * 8 / 10
            && n < red * kThumb * kThumb + kThumb * kThumb / 2,
        "frame %d: %d red pixels, want %d thumbnails'", frame, n, red);
    const int g = count_color (to_rgb (&info, out), 0, 255, 0);
    fail_unless (g >= green * kThumb * kThumb * 8 / 10
            && g < green * kThumb * kThumb + kThumb * kThumb / 2,
        "frame %d: %d green pixels, want %d thumbnails'", frame, g, green);
    gst_buffer_unref (out);
    /* Warnings come once per source, with the first frame. */
    const size_t before = warnings.size ();
    while (GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) {
      GError *err = NULL;
      gst_message_parse_warning (msg, &err, NULL);
      warnings.push_back (err->message);
      g_error_free (err);
      gst_message_unref (msg);
    }
    if (frame == 1)
      fail_unless_equals_int (warnings.size (), before);
  }
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  return warnings;
}

static bool
warned (const std::vector<std::string> &warnings, const std::string &source,
    const char *words)
{
  for (const std::string &w : warnings)
    if (w.find (source) != std::string::npos
        && w.find (words) != std::string::npos)
      return true;
  return false;
}

GST_START_TEST (test_source_not_a_file)
{
  /* Opening a FIFO for reading waited for a writer forever. */
  const std::string fifo = std::string (tmp_dir) + "/fifo.png";
  fail_unless (mkfifo (fifo.c_str (), 0600) == 0);
  const std::vector<std::string> warnings = draw_twice (
      {
          {0, 0.0f, 1, (gchar *) "red", (gchar *) red_png.c_str ()},
          {1, 0.1f, 1, (gchar *) "fifo", (gchar *) fifo.c_str ()},
          {2, 0.2f, 1, (gchar *) "dir", tmp_dir},
          {3, 0.3f, 1, (gchar *) "null", (gchar *) "/dev/null"},
      },
      1);
  fail_unless_equals_int (warnings.size (), 3);
  fail_unless (warned (warnings, fifo, "not a regular file"));
  fail_unless (warned (warnings, tmp_dir, "not a regular file"));
  fail_unless (warned (warnings, "/dev/null", "not a regular file"));
}

GST_END_TEST;

GST_START_TEST (test_huge_image)
{
  /* 8000 x 7000 = 56 MP, over the 50 MP limit: decoded, it would show red. */
  const std::string huge = std::string (tmp_dir) + "/huge.png";
  write_red_png (huge, 8000, 7000);
  /* And a label of 32,000 characters, which took seconds per frame to fit. */
  const std::string long_label (32000, 'x');
  const std::vector<std::string> warnings = draw_twice (
      {
          {0, 0.0f, 1, (gchar *) long_label.c_str (),
              (gchar *) red_png.c_str ()},
          {1, 0.1f, 1, (gchar *) "huge", (gchar *) huge.c_str ()},
      },
      1);
  fail_unless_equals_int (warnings.size (), 1);
  fail_unless (warned (warnings, huge,
      "declares 8000x7000 pixels, more than max-pixels (50000000)"));
}

GST_END_TEST;

/* A catalog whose item 0 has a green thumbnail, item 1 none and item 2 a
 * damaged one. */
static std::string
write_catalog_with_thumbnails (void)
{
  const std::string index = std::string (tmp_dir) + "/gallery.faiss";
  std::vector<uchar> green;
  fail_unless (cv::imencode (".jpg",
      cv::Mat (20, 40, CV_8UC3, cv::Scalar (0, 255, 0)), green));
  vs::IndexFacts facts;
  facts.dims = 4;
  facts.metric = "l2";
  facts.count = 3;
  std::vector<vs::CatalogItem> items (3);
  for (int i = 0; i < 3; i++)
    items[i].id = i;
  items[0].thumbnail.assign (green.begin (), green.end ());
  items[2].thumbnail.assign (green.begin (), green.begin () + 40);
  vs::Catalog::write_atomically (vs::catalog_path_for (index), facts, items);
  return index;
}

GST_START_TEST (test_catalog_thumbnails)
{
  const std::string index = write_catalog_with_thumbnails ();
  const std::string gone = std::string (tmp_dir) + "/gone.png";
  const std::vector<GstVisualSearchNeighbor> nb = {
      {0, 0.0f, 1, (gchar *) "gone", (gchar *) gone.c_str ()},
      {1, 0.1f, 1, (gchar *) "red", (gchar *) red_png.c_str ()},
      {2, 0.2f, 1, (gchar *) "damaged", (gchar *) red_png.c_str ()},
  };
  /* Item 0's original is gone, its thumbnail is in the catalog; item 1 has
   * none there, item 2 a damaged one: both are read from red.png. */
  std::vector<std::string> warnings = draw_twice (nb, 2, index.c_str (), 1);
  fail_unless_equals_int (warnings.size (), 1);
  fail_unless (warned (warnings, "item 2 in the catalog " + index + ".db",
      "read from their original files instead"));

  /* Without the index, the missing original leaves its tile blank. */
  warnings = draw_twice (nb, 2);
  fail_unless_equals_int (warnings.size (), 1);
  fail_unless (warned (warnings, gone, "Cannot show the gallery image"));

  /* A missing catalog: one warning, then the files. */
  const std::string elsewhere = std::string (tmp_dir) + "/none.faiss";
  warnings = draw_twice (nb, 2, elsewhere.c_str ());
  fail_unless_equals_int (warnings.size (), 2);
  fail_unless (warned (warnings, elsewhere + ".db", "does not exist"));

  /* Behind a faisssearch the overlay finds the catalog by itself... */
  warnings = draw_twice (nb, 2, NULL, 1, index.c_str ());
  fail_unless_equals_int (warnings.size (), 1);
  fail_unless (warned (warnings, "item 2 in the catalog " + index + ".db",
      "read from their original files instead"));
  /* ...and the index property, when set, wins. */
  warnings = draw_twice (nb, 2, elsewhere.c_str (), 0, index.c_str ());
  fail_unless_equals_int (warnings.size (), 2);
  fail_unless (warned (warnings, elsewhere + ".db", "does not exist"));
}

GST_END_TEST;

/* A region with neighbours gets a green outline and its best match's tile
 * below it; nothing far from both changes, in packed and planar layouts. A
 * region without neighbours leaves the frame untouched. */
static void
check_region (const char *format)
{
  GstVideoInfo info;
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
                                 "framerate=30/1",
      format, kWidth, kHeight);
  GstCaps *c = gst_caps_from_string (caps);
  fail_unless (gst_video_info_from_caps (&info, c));
  gst_caps_unref (c);

  GstHarness *h = gst_harness_new ("searchoverlay");
  g_object_set (h->element, "thumb-size", kThumb, NULL);
  gst_harness_set_caps_str (h, caps, caps);
  g_free (caps);

  GstBuffer *input = grey_frame (&info);
  GstBuffer *reference = gst_buffer_copy_deep (input);
  GstVisualSearchNeighbor nb = {0, 0.875f, 3, (gchar *) "red",
      (gchar *) red_png.c_str ()};
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (input, "face", 100, 40, 60,
          50);
  gst_visualsearch_region_set_neighbors (roi,
      GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 1, &nb);
  /* Outside the frame: nothing of it is drawn, no error. */
  roi = gst_buffer_add_video_region_of_interest_meta (input, "face", 4000, 10,
      20, 20);
  gst_visualsearch_region_set_neighbors (roi,
      GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 1, &nb);
  GstBuffer *out = gst_harness_push_and_pull (h, input);

  const cv::Mat before = to_rgb (&info, reference);
  const cv::Mat after = to_rgb (&info, out);
  /* The box's outline, on each side. */
  for (const cv::Point &p : {cv::Point (130, 40), cv::Point (130, 89),
           cv::Point (100, 60), cv::Point (159, 60)}) {
    const cv::Vec3b &px = after.at<cv::Vec3b> (p);
    fail_unless (px[1] > 150 && px[0] < 120 && px[2] < 160,
        "%s: no green outline at %d,%d (%d,%d,%d)", format, p.x, p.y, px[0],
        px[1], px[2]);
  }
  /* The best match's red thumbnail, below the box. */
  const cv::Mat below = after (cv::Rect (96, 90, 100, 150));
  fail_unless (count_color (below, 255, 0, 0) >= kThumb * kThumb * 8 / 10,
      "%s: the best match's thumbnail is not below the region", format);
  /* Far from the box and its tile nothing changed (a 4-pixel margin for
   * chroma and antialiasing). */
  const cv::Rect touched (94, 36, 70 + 4 * kThumb, kHeight - 36);
  for (int y = 0; y < kHeight; y += 2)
    for (int x = 0; x < kWidth; x += 2)
      if (!touched.contains (cv::Point (x, y)))
        fail_unless (after.at<cv::Vec3b> (y, x) == before.at<cv::Vec3b> (y, x),
            "%s: pixel %d,%d changed away from the region", format, x, y);

  /* Regions without neighbours: the frame passes untouched, not copied. */
  GstBuffer *plain = grey_frame (&info);
  gst_buffer_add_video_region_of_interest_meta (plain, "face", 10, 10, 40, 40);
  GstBuffer *plain_out = gst_harness_push_and_pull (h, gst_buffer_ref (plain));
  fail_unless (plain_out == plain);
  gst_buffer_unref (plain_out);
  gst_buffer_unref (plain);

  gst_buffer_unref (out);
  gst_buffer_unref (reference);
  gst_harness_teardown (h);
}

GST_START_TEST (test_regions)
{
  for (const char *format : {"RGB", "BGRx", "I420", "NV12"})
    check_region (format);
}

GST_END_TEST;

static Suite *
searchoverlay_suite (void)
{
  Suite *s = suite_create ("searchoverlay");
  TCase *tc = tcase_create ("general");

  tcase_add_checked_fixture (tc, setup, teardown);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_formats);
  tcase_add_test (tc, test_regions);
  tcase_add_test (tc, test_positions);
  tcase_add_test (tc, test_frame_too_small);
  tcase_add_test (tc, test_persist);
  tcase_add_test (tc, test_fit_text);
  tcase_add_test (tc, test_source_not_a_file);
  tcase_add_test (tc, test_huge_image);
  tcase_add_test (tc, test_catalog_thumbnails);
  return s;
}

GST_CHECK_MAIN (searchoverlay);
