// SPDX-License-Identifier: LGPL-2.1-or-later
// visualsearch-find-duplicates: the groups of near-duplicate pictures in a
// gallery index, printed, and a contact sheet of the tightest groups.
//
//   visualsearch-find-duplicates INDEX [--max-distance D] [--sheet FILE.png]
//       [--groups N] [--thumb PX] [--dataset DIR]
//
// The grouping is engine/index/duplicates.h's (a FAISS range search per item);
// pipelines/find-duplicates.sh is the way to run it. Thumbnails come from the
// catalog, or else from the originals under the gallery folder it records
// (CIFAR records from --dataset).
#include <unistd.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/error.h"
#include "engine/base/image_codec.h"
#include "engine/dataset/cifar_dataset.h"
#include "engine/index/duplicates.h"
#include "engine/index/gallery.h"
#include "engine/model/model_id.h"
#include "engine/render/result_strip.h"
#include "engine/render/thumbnail_cache.h"

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kFontScale = 0.4;
constexpr int kGap = 6;
constexpr int kLine = 16;  // one line of text
const cv::Scalar kBackground(24, 24, 24);
const cv::Scalar kText(235, 235, 235);
const cv::Scalar kWarning(255, 170, 60);  // RGB
constexpr int kMaxCaptionLines = 4;

struct Options {
  std::string index;
  double max_distance = -1;  // < 0: default_max_distance of the metric
  std::string sheet;
  int groups = 8;
  int thumb = 96;
  std::string dataset;
};

[[noreturn]] void usage(int status) {
  std::fprintf(status ? stderr : stdout,
               "usage: visualsearch-find-duplicates INDEX [--max-distance D] "
               "[--sheet FILE.png] [--groups N] [--thumb PX] [--dataset DIR]\n");
  std::exit(status);
}

double number(const std::string& name, const char* text, double low, double high) {
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= low && value <= high)) {
    char message[160];
    std::snprintf(message, sizeof message, "%s must be a number from %g to %g, not '", name.c_str(),
                  low, high);
    throw vs::Error(message + std::string(text) + "'.");
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") usage(0);
    if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) usage(2);
      const char* value = argv[++i];
      if (arg == "--max-distance")
        o.max_distance = number(arg, value, 0, 4);
      else if (arg == "--sheet")
        o.sheet = value;
      else if (arg == "--groups")
        o.groups = static_cast<int>(number(arg, value, 1, 1000));
      else if (arg == "--thumb")
        o.thumb = static_cast<int>(number(arg, value, 16, 512));
      else if (arg == "--dataset")
        o.dataset = value;
      else
        usage(2);
    } else if (o.index.empty()) {
      o.index = arg;
    } else {
      usage(2);
    }
  }
  if (o.index.empty()) usage(2);
  return o;
}

int text_width(std::string_view text) {
  int baseline = 0;
  return cv::getTextSize(std::string(text), kFont, kFontScale, 1, &baseline).width;
}

// text cut into lines at most width pixels wide, between characters, at most
// kMaxCaptionLines of them (the last then ends in "..." when text is longer):
// a file name is shown whole, not cut at the tile's edge.
std::vector<std::string> wrap(std::string_view text, int width) {
  std::vector<std::string> lines;
  while (!text.empty() && lines.size() < kMaxCaptionLines) {
    std::string line = vs::fit_text(text, width, text_width);
    if (line.empty()) line = std::string(text.substr(0, 1));  // wider than a tile: one byte
    if (lines.size() + 1 == kMaxCaptionLines && line.size() < text.size()) {
      line = vs::fit_text(text, width - text_width("..."), text_width) + "...";
      text = {};
    } else {
      text.remove_prefix(line.size());
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// text cut into lines at most width pixels wide between words (a word too
// long for a line is cut as wrap() cuts it).
std::vector<std::string> wrap_words(const std::string& text, int width) {
  std::vector<std::string> lines;
  std::string line;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find(' ', at), text.size());
    const std::string word = text.substr(at, end - at);
    at = end + 1;
    const std::string longer = line.empty() ? word : line + " " + word;
    if (text_width(longer) <= width) {
      line = longer;
      continue;
    }
    if (!line.empty()) lines.push_back(line);
    line.clear();
    std::string_view rest = word;
    while (text_width(rest) > width) {
      std::string part = vs::fit_text(rest, width, text_width);
      if (part.empty()) part = std::string(rest.substr(0, 1));
      rest.remove_prefix(part.size());
      lines.push_back(std::move(part));
    }
    line = std::string(rest);
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string shown_name(const vs::CatalogItem* item, int64_t id) {
  const std::string source = item ? item->source : "";
  const std::string name = source.substr(source.find_last_of('/') + 1);
  return name.empty() ? "id " + std::to_string(id) : name;
}

// One row per group: a heading, then its first items' thumbnails (exact
// copies first), each captioned with its whole file name over as many lines as
// it takes; as many columns as the largest group shown (at most 8).
cv::Mat contact_sheet(const std::vector<vs::DuplicateGroup>& groups, const vs::Catalog& catalog,
                      vs::ThumbnailCache& thumbnails, int thumb) {
  size_t columns = 0;
  for (const auto& group : groups) columns = std::max(columns, group.ids.size());
  columns = std::min<size_t>(columns, 8);
  std::vector<std::vector<int64_t>> shown;
  size_t caption_lines = 1;
  for (const auto& group : groups) {
    std::vector<int64_t> ids = group.copies_first();
    ids.resize(std::min(columns, ids.size()));
    for (const int64_t id : ids)
      caption_lines = std::max(caption_lines, wrap(shown_name(catalog.item(id), id), thumb).size());
    shown.push_back(std::move(ids));
  }
  const int row = kLine + thumb + static_cast<int>(caption_lines) * kLine + kGap;
  const int width = std::max(kGap + static_cast<int>(columns) * (thumb + kGap), 240);
  cv::Mat sheet(kGap + static_cast<int>(groups.size()) * row, width, CV_8UC3, kBackground);
  for (size_t g = 0; g < groups.size(); ++g) {
    const int top = kGap + static_cast<int>(g) * row;
    char heading[160];
    const size_t copies = groups[g].copies.empty() ? 0 : groups[g].copies[0].size();
    std::snprintf(heading, sizeof heading, "group %zu: %zu items, farthest %.4f%s", g + 1,
                  groups[g].ids.size(), groups[g].spread, copies ? ", exact copies first" : "");
    cv::putText(sheet, vs::fit_text(heading, width - 2 * kGap, text_width),
                cv::Point(kGap, top + kLine - 4), kFont, kFontScale, kText, 1, cv::LINE_AA);
    for (size_t c = 0; c < shown[g].size(); ++c) {
      const int64_t id = shown[g][c];
      const vs::CatalogItem* item = catalog.item(id);
      const cv::Rect tile(kGap + static_cast<int>(c) * (thumb + kGap), top + kLine, thumb, thumb);
      const cv::Mat& image = thumbnails.get(id, item ? item->source : "", thumb);
      if (!image.empty()) image.copyTo(sheet(tile));
      int y = tile.y + thumb + kLine - 4;
      for (const std::string& line : wrap(shown_name(item, id), thumb)) {
        cv::putText(sheet, line, cv::Point(tile.x, y), kFont, kFontScale, kText, 1, cv::LINE_AA);
        y += kLine;
      }
    }
  }
  return sheet;
}

// The bytes of a gallery item's file; false when it is no readable file (a
// video frame, a CIFAR record, a file gone).
bool read_file(const std::string& root, const std::string& source, std::string* bytes) {
  if (source.empty() || source.find("#t=") != std::string::npos) return false;
  std::ifstream in(root.empty() || source[0] == '/' ? source : root + "/" + source,
                   std::ios::binary);
  if (!in) return false;
  std::ostringstream out;
  out << in.rdbuf();
  *bytes = out.str();
  return !in.bad();
}

// Narrows each group's sets of identical embeddings to exact copies: when
// every item of a set is a file that can be read, those with the same bytes
// (a resized copy can embed identically, but is no exact copy); otherwise
// (CIFAR records, video frames) the embeddings are all there is to go by.
void narrow_copies_to_files(vs::DuplicateGroup* group, const vs::Catalog& catalog,
                            const std::string& root) {
  std::vector<std::vector<int64_t>> copies;
  for (const auto& set : group->copies) {
    std::map<std::string, std::vector<int64_t>> by_bytes;
    bool files = true;
    for (const int64_t id : set) {
      const vs::CatalogItem* item = catalog.item(id);
      std::string bytes;
      if (!item || !read_file(root, item->source, &bytes)) {
        files = false;
        break;
      }
      by_bytes[bytes].push_back(id);
    }
    if (!files) {
      copies.push_back(set);
      continue;
    }
    for (auto& [bytes, ids] : by_bytes)
      if (ids.size() >= 2) copies.push_back(std::move(ids));
  }
  std::sort(copies.begin(), copies.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() > b.size() : a[0] < b[0];
  });
  group->copies = std::move(copies);
}

// sheet with notice on top, in orange, wrapped between words.
cv::Mat with_notice(const cv::Mat& sheet, const std::string& notice) {
  const std::vector<std::string> lines = wrap_words(notice, sheet.cols - 2 * kGap);
  cv::Mat head(kGap + static_cast<int>(lines.size()) * kLine, sheet.cols, CV_8UC3, kBackground);
  for (size_t l = 0; l < lines.size(); ++l)
    cv::putText(head, lines[l], cv::Point(kGap, kGap + static_cast<int>(l + 1) * kLine - 4), kFont,
                kFontScale, kWarning, 1, cv::LINE_AA);
  cv::Mat both;
  cv::vconcat(head, sheet, both);
  return both;
}

void run(const Options& o) {
  const vs::IndexWithCatalog gallery = vs::load_index_with_catalog(o.index);
  const vs::Metric metric = gallery.index.metric();
  const double max_distance =
      o.max_distance >= 0 ? o.max_distance : vs::default_max_distance(metric);
  std::vector<int64_t> ids;
  for (const vs::CatalogItem& item : gallery.catalog.items()) ids.push_back(item.id);
  auto groups = vs::find_duplicate_groups(gallery.index, ids, max_distance);
  for (auto& group : groups)
    narrow_copies_to_files(&group, gallery.catalog, gallery.catalog.facts().gallery_root);

  size_t grouped = 0;
  for (const auto& group : groups) grouped += group.ids.size();
  const std::string model_id = gallery.catalog.facts().model_id;
  const bool random_weights = vs::has_random_weights(model_id);
  std::printf("%s: %zu items, metric %s; near-duplicates are at most %g apart (%s)\n",
              o.index.c_str(), ids.size(), vs::metric_name(metric), max_distance,
              metric == vs::Metric::InnerProduct ? "cosine distance, 1 - similarity"
                                                 : "squared L2 distance");
  std::string notice;
  if (random_weights) {
    notice = "RANDOM WEIGHTS (" + model_id +
             "): every picture lies about equally close to every other, so these groups say "
             "little about what the pictures show; exact copies are still exact.";
    std::printf(
        "warning: the index was built with random weights (model %s): every picture "
        "lies about equally close to every other, so no limit separates "
        "near-duplicates from the rest; only exact copies are reliable. Index with "
        "real weights (models/fetch-weights.sh, then index-folder.sh with "
        "MODE=rebuild).\n",
        model_id.c_str());
  }
  std::printf("the tightest groups first (smallest farthest link)\n");
  for (size_t g = 0; g < groups.size(); ++g) {
    std::printf("group %zu: %zu items, farthest link %.4f\n", g + 1, groups[g].ids.size(),
                groups[g].spread);
    for (const auto& set : groups[g].copies) {
      std::string list;
      for (const int64_t id : set) list += (list.empty() ? "id " : " = id ") + std::to_string(id);
      std::printf("  exact copies: %s\n", list.c_str());
    }
    for (const int64_t id : groups[g].copies_first()) {
      const vs::CatalogItem* item = gallery.catalog.item(id);
      std::printf("  id %-8lld %s\n", static_cast<long long>(id),
                  item && !item->source.empty() ? item->source.c_str() : "?");
    }
  }
  std::printf("%zu groups, %zu items in them\n", groups.size(), grouped);
  size_t largest = 0;
  for (size_t g = 0; g < groups.size(); ++g)
    if (groups[g].ids.size() > groups[largest].ids.size()) largest = g;
  if (!groups.empty() && ids.size() >= 4 && 2 * groups[largest].ids.size() > ids.size()) {
    std::printf(
        "warning: group %zu holds %zu of the %zu items: a limit of %g links most of the gallery "
        "into one chain, so it does not find near-duplicates here. %s\n",
        largest + 1, groups[largest].ids.size(), ids.size(), max_distance,
        random_weights ? "The index was built with random weights, which put all pictures "
                         "about equally close: index with real weights."
                       : "Lower MAX_DISTANCE (--max-distance) towards the farthest links of "
                         "the tightest groups.");
  }
  if (o.sheet.empty() || groups.empty()) return;

  const std::vector<vs::DuplicateGroup> shown(
      groups.begin(), groups.begin() + std::min<size_t>(groups.size(), o.groups));
  vs::ThumbnailCache thumbnails(256, std::make_shared<vs::CifarSources>(o.dataset),
                                gallery.catalog.thumbnails(), gallery.catalog.facts().gallery_root);
  cv::Mat sheet = contact_sheet(shown, gallery.catalog, thumbnails, o.thumb);
  if (!notice.empty()) sheet = with_notice(sheet, notice);
  for (const std::string& warning : thumbnails.take_warnings())
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  cv::cvtColor(sheet, sheet, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(o.sheet, sheet))
    throw vs::Error("Cannot write the contact sheet " + o.sheet +
                    "; check that its folder exists and is writable.");
  std::printf("contact sheet of the %zu tightest groups: %s\n", shown.size(), o.sheet.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // The codecs module is looked for beside the code that loads it (the
  // plugin's folder, for the plugin) or in the build tree: installed, this
  // tool is in bin/, so point it at the module installed with the plugin.
  if (!std::getenv(vs::kCodecsModuleEnv) && access(VS_BUILT_CODECS_MODULE, R_OK) != 0 &&
      access(VS_INSTALLED_CODECS_MODULE, R_OK) == 0)
    setenv(vs::kCodecsModuleEnv, VS_INSTALLED_CODECS_MODULE, 0);
  try {
    run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visualsearch-find-duplicates: %s\n", e.what());
    return 1;
  }
  return 0;
}
