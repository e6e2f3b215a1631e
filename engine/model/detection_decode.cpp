// SPDX-License-Identifier: LGPL-2.1-or-later
// The LibTorch-free half of object detection: COCO names, the GFL box decode,
// NMS, and load_object_detector(), which opens the engine module.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/base/module_loader.h"
#include "engine/model/object_detector.h"

namespace vs {

const std::vector<std::string>& coco_class_names() {
  static const std::vector<std::string> names = {"person",        "bicycle",      "car",
                                                 "motorcycle",    "airplane",     "bus",
                                                 "train",         "truck",        "boat",
                                                 "traffic light", "fire hydrant", "stop sign",
                                                 "parking meter", "bench",        "bird",
                                                 "cat",           "dog",          "horse",
                                                 "sheep",         "cow",          "elephant",
                                                 "bear",          "zebra",        "giraffe",
                                                 "backpack",      "umbrella",     "handbag",
                                                 "tie",           "suitcase",     "frisbee",
                                                 "skis",          "snowboard",    "sports ball",
                                                 "kite",          "baseball bat", "baseball glove",
                                                 "skateboard",    "surfboard",    "tennis racket",
                                                 "bottle",        "wine glass",   "cup",
                                                 "fork",          "knife",        "spoon",
                                                 "bowl",          "banana",       "apple",
                                                 "sandwich",      "orange",       "broccoli",
                                                 "carrot",        "hot dog",      "pizza",
                                                 "donut",         "cake",         "chair",
                                                 "couch",         "potted plant", "bed",
                                                 "dining table",  "toilet",       "tv",
                                                 "laptop",        "mouse",        "remote",
                                                 "keyboard",      "cell phone",   "microwave",
                                                 "oven",          "toaster",      "sink",
                                                 "refrigerator",  "book",         "clock",
                                                 "vase",          "scissors",     "teddy bear",
                                                 "hair drier",    "toothbrush"};
  return names;
}

std::vector<bool> coco_class_filter(const std::string& list) {
  const auto& names = coco_class_names();
  std::vector<bool> keep;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    const auto it = std::find(names.begin(), names.end(), item);
    if (it == names.end())
      throw Error(ErrorKind::Settings, "classes: '" + item +
                                           "' is not a COCO class name (e.g. person, car, dog; "
                                           "gst-inspect-1.0 objectdetect lists them all)");
    if (keep.empty()) keep.assign(names.size(), false);
    keep[it - names.begin()] = true;
  }
  return keep;
}

std::vector<Detection> decode_gfl(const std::vector<HeadLevel>& levels, float threshold,
                                  const std::vector<bool>& keep, size_t cap) {
  std::vector<Detection> out;
  std::vector<float> prob;
  for (const HeadLevel& l : levels) {
    const int bins = l.reg_max + 1;
    prob.resize(bins);
    const int anchors = l.width * l.height;
    for (int a = 0; a < anchors; a++) {
      const float* s = l.scores + static_cast<size_t>(a) * l.classes;
      bool any = false;
      for (int c = 0; c < l.classes && !any; c++)
        any = s[c] > threshold && (keep.empty() || (c < static_cast<int>(keep.size()) && keep[c]));
      if (!any) continue;
      // expected distance per side: softmax over the bins
      float dist[4];
      const float* r = l.boxes + static_cast<size_t>(a) * 4 * bins;
      for (int side = 0; side < 4; side++) {
        const float* logits = r + side * bins;
        const float m = *std::max_element(logits, logits + bins);
        float sum = 0, expect = 0;
        for (int k = 0; k < bins; k++) {
          prob[k] = std::exp(logits[k] - m);
          sum += prob[k];
          expect += prob[k] * static_cast<float>(k);
        }
        dist[side] = expect / sum * static_cast<float>(l.stride);
      }
      const float cx = (static_cast<float>(a % l.width) + 0.5f) * static_cast<float>(l.stride);
      const float cy = (static_cast<float>(a / l.width) + 0.5f) * static_cast<float>(l.stride);
      for (int c = 0; c < l.classes; c++) {
        if (!(s[c] > threshold)) continue;
        if (!keep.empty() && (c >= static_cast<int>(keep.size()) || !keep[c])) continue;
        out.push_back({cx - dist[0], cy - dist[1], cx + dist[2], cy + dist[3], s[c], c});
      }
    }
  }
  if (out.size() > cap) {
    std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(cap), out.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
    out.resize(cap);
  }
  return out;
}

static float iou_of(const Detection& a, const Detection& b) {
  const float w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const float h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (w <= 0 || h <= 0) return 0;
  const float inter = w * h;
  const float area_a = (a.x1 - a.x0) * (a.y1 - a.y0);
  const float area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  return inter / (area_a + area_b - inter);
}

std::vector<Detection> non_max_suppression(std::vector<Detection> cand, float iou,
                                           int max_detections) {
  // stable, so equal scores keep the decode's order (deterministic)
  std::stable_sort(cand.begin(), cand.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (const Detection& d : cand) {
    if (static_cast<int>(kept.size()) >= max_detections) break;
    bool suppressed = false;
    for (const Detection& k : kept)
      if (k.class_id == d.class_id && iou_of(k, d) > iou) {
        suppressed = true;
        break;
      }
    if (!suppressed) kept.push_back(d);
  }
  return kept;
}

std::unique_ptr<ObjectDetector> load_object_detector(const DetectorConfig& config) {
  using Factory = ObjectDetector* (*)(const DetectorConfig*, size_t);
  const auto factory = reinterpret_cast<Factory>(
      module_symbol("libvisualsearch-engine.so", kEngineModuleEnv, VS_ENGINE_MODULE_BUILD_PATH,
                    "vs_object_detector_new"));
  return std::unique_ptr<ObjectDetector>(factory(&config, sizeof config));
}

}  // namespace vs
