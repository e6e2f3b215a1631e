// SPDX-License-Identifier: LGPL-2.1-or-later
// Object detection for `objectdetect`: a TorchScript detector with a NanoDet
// (GFL) head, its box decode (distribution focal loss: the expected distance
// over reg_max + 1 bins per side) and class-wise non-maximum suppression.
// This header is free of LibTorch; the model runs in the engine module
// (object_detector.cpp), the decode and NMS here (detection_decode.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model/embedding_engine.h"

namespace vs {

// The 80 COCO class names, in the order of a COCO detector's score channels.
const std::vector<std::string>& coco_class_names();

// Class ids of a comma-separated list of COCO names ("person,car"); empty =
// every class. Throws vs::Error (Settings) naming an unknown name.
std::vector<bool> coco_class_filter(const std::string& names);

// A box in the pixels of the frame (or of the model input, before scaling).
struct Detection {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  float score = 0;
  int class_id = 0;
};

// One level of a NanoDet head: per anchor (row-major over width x height),
// `classes` scores (after sigmoid) and 4 x (reg_max + 1) logits, sides in the
// order left, top, right, bottom.
struct HeadLevel {
  const float* scores = nullptr;
  const float* boxes = nullptr;
  int width = 0, height = 0, stride = 0;
  int classes = 0, reg_max = 0;
};

// Every (anchor, class) whose score is above threshold (and whose class
// `keep` allows; empty = all) as a box in model-input pixels: the anchor's
// centre ((i + 0.5) * stride) minus/plus the expected distances
// sum_k softmax(logits)_k * k * stride. At most `cap` candidates, the best.
std::vector<Detection> decode_gfl(const std::vector<HeadLevel>& levels, float threshold,
                                  const std::vector<bool>& keep, size_t cap = 4096);

// Greedy NMS per class: a box is dropped when it overlaps a better box of its
// class by IoU > iou. Returns at most max_detections, best first.
std::vector<Detection> non_max_suppression(std::vector<Detection> candidates, float iou,
                                           int max_detections);

struct DetectorConfig {
  std::string model;  // TorchScript file (models/fetch-detectors.sh nanodet)
  int input_size = 416;
  float threshold = 0.35f;
  float nms_iou = 0.5f;
  int max_detections = 100;
  int threads = 0;         // 0 = the number of cores
  std::vector<bool> keep;  // per COCO class; empty = all
};

class ObjectDetector {
 public:
  virtual ~ObjectDetector() = default;
  // The detections in the frame's pixels, clipped to it, best first.
  virtual std::vector<Detection> detect(const ImageView& image) = 0;
};

// Loads the model from the engine module and checks its outputs on a probe
// frame: throws vs::Error (NotFound, Format) saying what is wrong.
std::unique_ptr<ObjectDetector> load_object_detector(const DetectorConfig& config);

}  // namespace vs
