/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The strip searchoverlay draws: one tile per neighbour (thumbnail, label,
// score) along an edge of the frame, rendered in RGB and written into the
// frame's own pixel layout; and, for a detected region, its box with the
// tile of its best match beside it.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vs {

enum class StripEdge { Top, Bottom, Left, Right };
enum class PixelLayout { RGB, BGR, RGBx, BGRx, I420, NV12 };

// A video frame's planes, as mapped by the caller.
struct FrameView {
  PixelLayout layout;
  int width;
  int height;
  uint8_t* planes[3];
  int strides[3];
};

struct StripTile {
  // Square RGB, scaled to the tile when its size differs; empty: a blank tile.
  // A header sharing the cache's pixels, so eviction cannot pull them away.
  cv::Mat thumbnail;
  std::string label;
  std::string score;
};

// The longest prefix of text, cut between characters, that measure() says is
// at most width pixels wide: a caption as a tile has room for it. measure
// must not shrink as text grows. Measures O(log n) prefixes, none longer
// than twice what fits plus one character, so a label of any length costs
// about what a short one does.
std::string fit_text(std::string_view text, int width,
                     const std::function<int(std::string_view)>& measure);

class ResultStrip {
 public:
  // Draws as many tiles as fit along the edge, in order, and returns the
  // rectangle of the frame it painted (empty when not even one tile fits).
  // Nothing outside that rectangle is touched.
  cv::Rect draw(const std::vector<StripTile>& tiles, int thumb_size, StripEdge edge,
                const FrameView& frame);

  // Draws text on one line (cut to fit) in orange, on a band as wide as the
  // frame along the edge opposite strip_edge (the top, unless the strip is
  // there): a notice such as "the weights are random", which the results
  // cannot hide. Returns the rectangle painted (empty when the frame is too
  // small for a line).
  cv::Rect draw_notice(const std::string& text, int thumb_size, StripEdge strip_edge,
                       const FrameView& frame);

  // Outlines box (clipped to the frame, 2 pixels wide, in green) and draws
  // best's tile below it, or above it when there is no room below, or along
  // the frame's bottom when neither has room, moved sideways to stay in the
  // frame. Returns the rectangle of the tile: empty, with nothing drawn, when
  // the box lies outside the frame; empty, with the outline drawn, when the
  // frame is too small for a tile.
  cv::Rect draw_region(const cv::Rect& box, const StripTile& best, int thumb_size,
                       const FrameView& frame);

 private:
  void write(const cv::Mat& rgb, const cv::Rect& where, const FrameView& frame);

  // Reused from frame to frame.
  cv::Mat strip_;
  cv::Mat notice_;
  cv::Mat card_;
  cv::Mat edge_;
  std::vector<StripTile> one_;
  cv::Mat converted_;
};

}  // namespace vs
