// SPDX-License-Identifier: LGPL-2.1-or-later
// visualsearch-find-duplicates: the groups of near-duplicate pictures in a
// gallery index, printed, and a contact sheet of the largest groups.
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
#include <string>
#include <vector>

#include "engine/base/error.h"
#include "engine/base/image_codec.h"
#include "engine/dataset/cifar_dataset.h"
#include "engine/index/duplicates.h"
#include "engine/index/gallery.h"
#include "engine/render/result_strip.h"
#include "engine/render/thumbnail_cache.h"

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kFontScale = 0.4;
constexpr int kGap = 6;
constexpr int kLine = 16;  // one line of text
const cv::Scalar kBackground(24, 24, 24);
const cv::Scalar kText(235, 235, 235);

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

// One row per group: a heading, then its first items' thumbnails, each
// captioned with its file name; as many columns as the largest group shown
// (at most 8).
cv::Mat contact_sheet(const std::vector<vs::DuplicateGroup>& groups, const vs::Catalog& catalog,
                      vs::ThumbnailCache& thumbnails, int thumb) {
  size_t columns = 0;
  for (const auto& group : groups) columns = std::max(columns, group.ids.size());
  columns = std::min<size_t>(columns, 8);
  const int row = kLine + thumb + kLine + kGap;
  const int width = std::max(kGap + static_cast<int>(columns) * (thumb + kGap), 240);
  cv::Mat sheet(kGap + static_cast<int>(groups.size()) * row, width, CV_8UC3, kBackground);
  auto measure = [](std::string_view text) {
    int baseline = 0;
    return cv::getTextSize(std::string(text), kFont, kFontScale, 1, &baseline).width;
  };
  for (size_t g = 0; g < groups.size(); ++g) {
    const int top = kGap + static_cast<int>(g) * row;
    char heading[96];
    std::snprintf(heading, sizeof heading, "group %zu: %zu items", g + 1, groups[g].ids.size());
    cv::putText(sheet, vs::fit_text(heading, width - 2 * kGap, measure),
                cv::Point(kGap, top + kLine - 4), kFont, kFontScale, kText, 1, cv::LINE_AA);
    for (size_t c = 0; c < std::min(columns, groups[g].ids.size()); ++c) {
      const int64_t id = groups[g].ids[c];
      const vs::CatalogItem* item = catalog.item(id);
      const std::string source = item ? item->source : "";
      const cv::Rect tile(kGap + static_cast<int>(c) * (thumb + kGap), top + kLine, thumb, thumb);
      const cv::Mat& image = thumbnails.get(id, source, thumb);
      if (!image.empty()) image.copyTo(sheet(tile));
      const std::string name = source.substr(source.find_last_of('/') + 1);
      cv::putText(
          sheet, vs::fit_text(name.empty() ? "id " + std::to_string(id) : name, thumb, measure),
          cv::Point(tile.x, tile.y + thumb + kLine - 4), kFont, kFontScale, kText, 1, cv::LINE_AA);
    }
  }
  return sheet;
}

void run(const Options& o) {
  const vs::IndexWithCatalog gallery = vs::load_index_with_catalog(o.index);
  const vs::Metric metric = gallery.index.metric();
  const double max_distance =
      o.max_distance >= 0 ? o.max_distance : vs::default_max_distance(metric);
  std::vector<int64_t> ids;
  for (const vs::CatalogItem& item : gallery.catalog.items()) ids.push_back(item.id);
  const auto groups = vs::find_duplicate_groups(gallery.index, ids, max_distance);

  size_t grouped = 0;
  for (const auto& group : groups) grouped += group.ids.size();
  std::printf("%s: %zu items, metric %s; near-duplicates are at most %g apart (%s)\n",
              o.index.c_str(), ids.size(), vs::metric_name(metric), max_distance,
              metric == vs::Metric::InnerProduct ? "cosine distance, 1 - similarity"
                                                 : "squared L2 distance");
  for (size_t g = 0; g < groups.size(); ++g) {
    std::printf("group %zu: %zu items, farthest link %.4f\n", g + 1, groups[g].ids.size(),
                groups[g].spread);
    for (const int64_t id : groups[g].ids) {
      const vs::CatalogItem* item = gallery.catalog.item(id);
      std::printf("  id %-8lld %s\n", static_cast<long long>(id),
                  item && !item->source.empty() ? item->source.c_str() : "?");
    }
  }
  std::printf("%zu groups, %zu items in them\n", groups.size(), grouped);
  if (o.sheet.empty() || groups.empty()) return;

  const std::vector<vs::DuplicateGroup> shown(
      groups.begin(), groups.begin() + std::min<size_t>(groups.size(), o.groups));
  vs::ThumbnailCache thumbnails(256, std::make_shared<vs::CifarSources>(o.dataset),
                                gallery.catalog.thumbnails(), gallery.catalog.facts().gallery_root);
  cv::Mat sheet = contact_sheet(shown, gallery.catalog, thumbnails, o.thumb);
  for (const std::string& warning : thumbnails.take_warnings())
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  cv::cvtColor(sheet, sheet, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(o.sheet, sheet))
    throw vs::Error("Cannot write the contact sheet " + o.sheet +
                    "; check that its folder exists and is writable.");
  std::printf("contact sheet of the %zu largest groups: %s\n", shown.size(), o.sheet.c_str());
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
