// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/render/result_strip.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstring>

namespace vs {

namespace {

const cv::Scalar kBackground(24, 24, 24);
const cv::Scalar kBlankTile(90, 90, 90);
const cv::Scalar kText(255, 255, 255);
const cv::Scalar kNotice(255, 170, 60);    // RGB orange
const cv::Scalar kRegionBox(40, 220, 90);  // RGB green
const int kFont = cv::FONT_HERSHEY_SIMPLEX;

struct Layout {
  int gap;
  double font_scale;
  int line_height;
  int baseline;
  int tile_height;  // thumbnail + two caption lines
};

Layout layout_for(int thumb_size) {
  Layout l;
  l.gap = std::max(2, thumb_size / 16);
  l.font_scale = std::clamp(thumb_size / 160.0, 0.3, 1.2);
  const cv::Size text = cv::getTextSize("Ag", kFont, l.font_scale, 1, &l.baseline);
  l.line_height = text.height + l.baseline + 2;
  l.tile_height = thumb_size + 2 * l.line_height;
  return l;
}

// Byte length of the first `chars` characters of text; npos when it has fewer.
size_t chars_end(std::string_view text, size_t chars) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if ((static_cast<uint8_t>(text[i]) & 0xc0) != 0x80 && seen++ == chars) return i;
  return seen == chars ? text.size() : std::string_view::npos;
}

int even_down(int v) { return v & ~1; }

void render(const Layout& l, const std::vector<StripTile>& tiles, size_t count, int thumb_size,
            bool vertical, cv::Mat* strip) {
  const int step = vertical ? l.tile_height + l.gap : thumb_size + l.gap;
  const int along = l.gap + static_cast<int>(count) * step;
  strip->create(vertical ? along : l.tile_height + 2 * l.gap,
                vertical ? thumb_size + 2 * l.gap : along, CV_8UC3);
  strip->setTo(kBackground);

  for (size_t i = 0; i < count; i++) {
    const int offset = l.gap + static_cast<int>(i) * step;
    const cv::Point origin = vertical ? cv::Point(l.gap, offset) : cv::Point(offset, l.gap);
    const cv::Rect thumb_rect(origin, cv::Size(thumb_size, thumb_size));
    const cv::Mat& thumb = tiles[i].thumbnail;
    cv::Mat target = (*strip)(thumb_rect);
    if (thumb.empty())
      target.setTo(kBlankTile);
    else if (thumb.size() == target.size())
      thumb.copyTo(target);
    else
      cv::resize(thumb, target, target.size(), 0, 0, cv::INTER_AREA);

    int text_y = origin.y + thumb_size + l.line_height - l.baseline - 1;
    const auto measure = [&l](std::string_view text) {
      int baseline;
      return cv::getTextSize(std::string(text), kFont, l.font_scale, 1, &baseline).width;
    };
    for (const std::string* line : {&tiles[i].label, &tiles[i].score}) {
      cv::putText(*strip, fit_text(*line, thumb_size, measure), cv::Point(origin.x, text_y), kFont,
                  l.font_scale, kText, 1, cv::LINE_AA);
      text_y += l.line_height;
    }
  }
}

// The conversion from the strip's RGB to a packed layout; -1 for RGB itself.
int packed_conversion(PixelLayout layout) {
  switch (layout) {
    case PixelLayout::BGR: return cv::COLOR_RGB2BGR;
    case PixelLayout::RGBx: return cv::COLOR_RGB2RGBA;
    case PixelLayout::BGRx: return cv::COLOR_RGB2BGRA;
    default: return -1;
  }
}

}  // namespace

std::string fit_text(std::string_view text, int width,
                     const std::function<int(std::string_view)>& measure) {
  const auto fits = [&](size_t chars) {
    return measure(text.substr(0, chars_end(text, chars))) <= width;
  };
  // Doubling finds a length that does not fit, bisection the longest that
  // does: prefixes up to twice the answer are measured, never the whole text.
  size_t fit = 0;
  size_t over = 1;
  while (true) {
    if (chars_end(text, over) == std::string_view::npos) {
      if (measure(text) <= width) return std::string(text);
      over = static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<uint8_t>(c) & 0xc0) != 0x80;
      }));
      break;
    }
    if (!fits(over)) break;
    fit = over;
    over *= 2;
  }
  while (over - fit > 1) {
    const size_t mid = fit + (over - fit) / 2;
    (fits(mid) ? fit : over) = mid;
  }
  return std::string(text.substr(0, chars_end(text, fit)));
}

cv::Rect ResultStrip::draw(const std::vector<StripTile>& tiles, int thumb_size, StripEdge edge,
                           const FrameView& frame) {
  const Layout l = layout_for(thumb_size);
  const bool vertical = edge == StripEdge::Left || edge == StripEdge::Right;
  const int step = vertical ? l.tile_height + l.gap : thumb_size + l.gap;
  const int room = vertical ? frame.height : frame.width;
  const int across = vertical ? thumb_size + 2 * l.gap : l.tile_height + 2 * l.gap;
  if (across > (vertical ? frame.width : frame.height)) return {};
  const size_t count =
      std::min(tiles.size(), static_cast<size_t>(std::max(0, (room - l.gap) / step)));
  if (count == 0) return {};

  // Even sizes and offsets keep chroma-subsampled layouts aligned.
  const int along = l.gap + static_cast<int>(count) * step;
  const int w = even_down(vertical ? across : along);
  const int h = even_down(vertical ? along : across);
  int x = 0;
  int y = 0;
  if (edge == StripEdge::Bottom) y = even_down(frame.height - h);
  if (edge == StripEdge::Right) x = even_down(frame.width - w);

  render(l, tiles, count, thumb_size, vertical, &strip_);
  const cv::Rect where(x, y, w, h);
  write(strip_, where, frame);
  return where;
}

cv::Rect ResultStrip::draw_notice(const std::string& text, int thumb_size, StripEdge strip_edge,
                                  const FrameView& frame) {
  const Layout l = layout_for(thumb_size);
  const int w = even_down(frame.width);
  // The captions' font, smaller when that lets the whole line fit.
  int baseline = 0;
  const int at_one = cv::getTextSize(text, kFont, 1.0, 1, &baseline).width;
  const double scale =
      std::max(0.3, std::min(l.font_scale, at_one > 0 ? 0.95 * (w - 2.0 * l.gap) / at_one : 1.0));
  const cv::Size size = cv::getTextSize("Ag", kFont, scale, 1, &baseline);
  const int h = even_down(size.height + baseline + 2 + 2 * l.gap + 1);
  if (w < 2 || h > frame.height) return {};
  const int y = strip_edge == StripEdge::Top ? even_down(frame.height - h) : 0;
  notice_.create(h, w, CV_8UC3);
  notice_.setTo(kBackground);
  const auto measure = [scale](std::string_view line) {
    int b;
    return cv::getTextSize(std::string(line), kFont, scale, 1, &b).width;
  };
  cv::putText(notice_, fit_text(text, w - 2 * l.gap, measure),
              cv::Point(l.gap, l.gap + size.height + 1), kFont, scale, kNotice, 1, cv::LINE_AA);
  const cv::Rect where(0, y, w, h);
  write(notice_, where, frame);
  return where;
}

cv::Rect ResultStrip::draw_region(const cv::Rect& box, const StripTile& best, int thumb_size,
                                  const FrameView& frame) {
  // Even sizes and offsets keep chroma-subsampled layouts aligned.
  const cv::Rect inside(0, 0, even_down(frame.width), even_down(frame.height));
  const cv::Rect clipped = box & inside;
  if (clipped.empty()) return {};
  const int x0 = even_down(clipped.x);
  const int y0 = even_down(clipped.y);
  const int x1 = even_down(clipped.x + clipped.width);
  const int y1 = even_down(clipped.y + clipped.height);
  const int t = 2;
  if (x1 - x0 >= 2 * t && y1 - y0 >= 2 * t) {
    for (const cv::Rect& side : {cv::Rect(x0, y0, x1 - x0, t), cv::Rect(x0, y1 - t, x1 - x0, t),
                                 cv::Rect(x0, y0, t, y1 - y0), cv::Rect(x1 - t, y0, t, y1 - y0)}) {
      edge_.create(side.height, side.width, CV_8UC3);
      edge_.setTo(kRegionBox);
      write(edge_, side, frame);
    }
  }

  const Layout l = layout_for(thumb_size);
  one_.assign(1, best);
  render(l, one_, 1, thumb_size, false, &card_);
  const int w = even_down(card_.cols);
  const int h = even_down(card_.rows);
  if (w > inside.width || h > inside.height) return {};
  int y = y1;
  if (y + h > inside.height) y = even_down(y0 - h);
  if (y < 0) y = inside.height - h;
  const int x = std::clamp(x0, 0, inside.width - w);
  const cv::Rect where(x, y, w, h);
  write(card_, where, frame);
  return where;
}

void ResultStrip::write(const cv::Mat& source, const cv::Rect& where, const FrameView& frame) {
  const cv::Mat rgb = source(cv::Rect(0, 0, where.width, where.height));

  auto plane = [&](int i, int rows, int cols, int type) {
    return cv::Mat(rows, cols, type, frame.planes[i], frame.strides[i]);
  };

  switch (frame.layout) {
    case PixelLayout::RGB:
    case PixelLayout::BGR:
    case PixelLayout::RGBx:
    case PixelLayout::BGRx: {
      const int code = packed_conversion(frame.layout);
      const bool four = frame.layout == PixelLayout::RGBx || frame.layout == PixelLayout::BGRx;
      cv::Mat target = plane(0, frame.height, frame.width, four ? CV_8UC4 : CV_8UC3)(where);
      if (code < 0) {
        rgb.copyTo(target);
      } else {
        cv::cvtColor(rgb, converted_, code);
        converted_.copyTo(target);
      }
      break;
    }
    case PixelLayout::I420:
    case PixelLayout::NV12: {
      // OpenCV writes planar I420: the Y plane, then U, then V, each packed.
      cv::cvtColor(rgb, converted_, cv::COLOR_RGB2YUV_I420);
      const int cw = where.width / 2;
      const int ch = where.height / 2;
      converted_.rowRange(0, where.height)
          .copyTo(plane(0, frame.height, frame.width, CV_8UC1)(where));
      const uint8_t* u = converted_.ptr<uint8_t>(where.height);
      const uint8_t* v = u + cw * ch;
      const int cx = where.x / 2;
      const int cy = where.y / 2;
      for (int row = 0; row < ch; row++) {
        if (frame.layout == PixelLayout::I420) {
          std::memcpy(frame.planes[1] + (cy + row) * frame.strides[1] + cx, u + row * cw, cw);
          std::memcpy(frame.planes[2] + (cy + row) * frame.strides[2] + cx, v + row * cw, cw);
        } else {
          uint8_t* uv = frame.planes[1] + (cy + row) * frame.strides[1] + 2 * cx;
          for (int col = 0; col < cw; col++) {
            uv[2 * col] = u[row * cw + col];
            uv[2 * col + 1] = v[row * cw + col];
          }
        }
      }
      break;
    }
  }
}

}  // namespace vs
