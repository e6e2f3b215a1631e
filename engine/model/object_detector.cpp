// SPDX-License-Identifier: LGPL-2.1-or-later
// The LibTorch half of object detection: the TorchScript detector, built into
// the engine module and created through vs_object_detector_new (see
// load_object_detector() in detection_decode.cpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <map>
#include <thread>

#include "engine/model/object_detector.h"

namespace vs {
namespace {

constexpr const char* kHint =
    "expected a NanoDet head: per level a (1, A, 80) score tensor and a (1, A, 4 x (reg_max + 1)) "
    "box tensor, A = (input-size / stride)^2, as models/fetch-detectors.sh nanodet makes";

std::string first_line(const char* what) {
  std::string s(what);
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string shape_of(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); i++) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + ")";
}

struct Level {
  size_t scores = 0, boxes = 0;  // output indices
  int width = 0, stride = 0, reg_max = 0;
};

class TorchObjectDetector : public ObjectDetector {
 public:
  explicit TorchObjectDetector(const DetectorConfig& c) : config_(c) {
    if (config_.input_size < 32 || config_.input_size > 4096)
      throw Error(ErrorKind::Settings,
                  "input-size " + std::to_string(config_.input_size) + " is outside 32..4096");
    if (!std::ifstream(config_.model).good())
      throw Error(ErrorKind::NotFound, "detector model '" + config_.model +
                                           "' cannot be opened; make one with "
                                           "models/fetch-detectors.sh nanodet (models/README.md)");
    threads_ = config_.threads > 0
                   ? config_.threads
                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    try {
      module_ = torch::jit::load(config_.model, at::kCPU);
      module_.eval();
    } catch (const std::exception& e) {
      throw Error(ErrorKind::Format, config_.model + " is not a loadable TorchScript module (" +
                                         first_line(e.what()) + ")");
    }
    // Frozen, with oneDNN's layouts and fusions: nanodet runs 2-3x faster
    // than as loaded. Not every module freezes (attributes it mutates, for
    // one); those run as loaded.
    try {
      module_ = torch::jit::optimize_for_inference(module_);
    } catch (const std::exception&) {}
    const int64_t s = config_.input_size;
    layout(run(at::zeros({1, 3, s, s})));
  }

  std::vector<Detection> detect(const ImageView& image) override {
    if (image.width <= 0 || image.height <= 0) return {};
    // packed RGB rows of the frame, whatever its channel order and padding
    rgb_.resize(static_cast<size_t>(image.width) * image.height * 3);
    for (int y = 0; y < image.height; y++) {
      const uint8_t* row = image.data + y * image.stride;
      uint8_t* out = rgb_.data() + static_cast<size_t>(y) * image.width * 3;
      for (int x = 0; x < image.width; x++, row += image.pixel_stride, out += 3) {
        out[0] = row[image.offsets[0]];
        out[1] = row[image.offsets[1]];
        out[2] = row[image.offsets[2]];
      }
    }
    const int64_t s = config_.input_size;
    std::vector<at::Tensor> outs;
    {
      if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
      c10::InferenceMode guard;
      at::Tensor x = at::from_blob(rgb_.data(), {1, image.height, image.width, 3}, at::kByte)
                         .permute({0, 3, 1, 2})
                         .to(at::kFloat)
                         .div_(255.0);
      if (image.width != s || image.height != s) x = at::upsample_bilinear2d(x, {s, s}, false);
      outs = run(x);
    }
    if (outs.size() != outputs_)
      throw Error(ErrorKind::Format, config_.model + ": the model returned " +
                                         std::to_string(outs.size()) + " outputs, then " +
                                         std::to_string(outputs_));
    std::vector<HeadLevel> heads;
    for (const Level& l : levels_) {
      HeadLevel h;
      h.scores = outs[l.scores].data_ptr<float>();
      h.boxes = outs[l.boxes].data_ptr<float>();
      h.width = h.height = l.width;
      h.stride = l.stride;
      h.classes = static_cast<int>(coco_class_names().size());
      h.reg_max = l.reg_max;
      heads.push_back(h);
    }
    std::vector<Detection> dets =
        non_max_suppression(decode_gfl(heads, config_.threshold, config_.keep), config_.nms_iou,
                            config_.max_detections);
    const float sx = static_cast<float>(image.width) / static_cast<float>(s);
    const float sy = static_cast<float>(image.height) / static_cast<float>(s);
    std::vector<Detection> out;
    for (Detection d : dets) {
      d.x0 = std::clamp(d.x0 * sx, 0.0f, static_cast<float>(image.width));
      d.x1 = std::clamp(d.x1 * sx, 0.0f, static_cast<float>(image.width));
      d.y0 = std::clamp(d.y0 * sy, 0.0f, static_cast<float>(image.height));
      d.y1 = std::clamp(d.y1 * sy, 0.0f, static_cast<float>(image.height));
      if (d.x1 - d.x0 >= 1.0f && d.y1 - d.y0 >= 1.0f) out.push_back(d);
    }
    return out;
  }

 private:
  // The model's outputs as contiguous float tensors of batch 1.
  std::vector<at::Tensor> run(const at::Tensor& x) {
    c10::IValue y;
    try {
      c10::InferenceMode guard;
      y = module_.forward({x});
    } catch (const std::exception& e) {
      throw Error(ErrorKind::Format, config_.model + ": the model failed on a (1, 3, " +
                                         std::to_string(config_.input_size) + ", " +
                                         std::to_string(config_.input_size) + ") input (" +
                                         first_line(e.what()) + "); " + kHint);
    }
    std::vector<c10::IValue> items;
    if (y.isTuple())
      items = y.toTupleRef().elements().vec();
    else if (y.isList())
      items = y.toListRef().vec();
    else
      throw Error(ErrorKind::Format, config_.model + " returned a single value; " + kHint);
    std::vector<at::Tensor> outs;
    for (size_t i = 0; i < items.size(); i++) {
      if (!items[i].isTensor())
        throw Error(ErrorKind::Format,
                    config_.model + ": output " + std::to_string(i) + " is not a tensor; " + kHint);
      at::Tensor t = items[i].toTensor();
      if (t.dim() != 3 || t.size(0) != 1 || !t.is_floating_point())
        throw Error(ErrorKind::Format, config_.model + ": output " + std::to_string(i) +
                                           " has shape " + shape_of(t) + "; " + kHint);
      outs.push_back(t.to(at::kFloat).contiguous());
    }
    return outs;
  }

  // Pairs the outputs into levels and checks them against the input size.
  void layout(const std::vector<at::Tensor>& outs) {
    const int classes = static_cast<int>(coco_class_names().size());
    std::map<int64_t, std::vector<size_t>, std::greater<int64_t>> by_anchors;
    for (size_t i = 0; i < outs.size(); i++) by_anchors[outs[i].size(1)].push_back(i);
    if (outs.empty())
      throw Error(ErrorKind::Format, config_.model + " returned no tensors; " + kHint);
    for (const auto& [anchors, idx] : by_anchors) {
      if (idx.size() != 2)
        throw Error(ErrorKind::Format, config_.model + ": " + std::to_string(idx.size()) +
                                           " outputs have " + std::to_string(anchors) +
                                           " anchors, not 2; " + kHint);
      Level l;
      const int64_t c0 = outs[idx[0]].size(2), c1 = outs[idx[1]].size(2);
      l.scores = c0 == classes ? idx[0] : idx[1];
      l.boxes = c0 == classes ? idx[1] : idx[0];
      const int64_t cb = outs[l.boxes].size(2);
      if (outs[l.scores].size(2) != classes || cb % 4 != 0 || cb < 8)
        throw Error(ErrorKind::Format, config_.model + ": the outputs with " +
                                           std::to_string(anchors) + " anchors have " +
                                           std::to_string(c0) + " and " + std::to_string(c1) +
                                           " channels; " + kHint);
      l.reg_max = static_cast<int>(cb / 4 - 1);
      l.width = static_cast<int>(std::lround(std::sqrt(static_cast<double>(anchors))));
      if (static_cast<int64_t>(l.width) * l.width != anchors || config_.input_size % l.width != 0)
        throw Error(ErrorKind::Format, config_.model + ": " + std::to_string(anchors) +
                                           " anchors is not a square grid dividing input-size " +
                                           std::to_string(config_.input_size) +
                                           " (is input-size the model's? nanodet's is 416); " +
                                           kHint);
      l.stride = config_.input_size / l.width;
      levels_.push_back(l);
    }
    outputs_ = outs.size();
  }

  DetectorConfig config_;
  torch::jit::Module module_;
  std::vector<Level> levels_;
  size_t outputs_ = 0;
  int threads_ = 1;
  std::vector<uint8_t> rgb_;
};

}  // namespace
}  // namespace vs

extern "C" __attribute__((visibility("default"))) vs::ObjectDetector* vs_object_detector_new(
    const vs::DetectorConfig* config, size_t config_size) {
  if (config_size != sizeof(vs::DetectorConfig))
    throw vs::Error(vs::ErrorKind::Module,
                    "the engine module does not match this plugin (another build?): "
                    "reinstall visualsearch");
  return new vs::TorchObjectDetector(*config);
}
