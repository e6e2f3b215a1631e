/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Post-training static int8 of a native ResNet, with LibTorch's quantized
// CPU ops (oneDNN, else QNNPACK): per-output-channel symmetric qint8 weights
// of the folded convolutions, float biases, and per-tensor quint8 activations
// whose ranges come from a calibration pass in fp32 (a histogram observer
// that minimises the quantization error, as PyTorch's default for oneDNN).
// The activation parameters travel as text, so that an index records them and
// a search embedder quantizes exactly as the gallery's embedder did.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model/embedding_engine.h"
#include "engine/model/resnet.h"

namespace vs {

// Scale and zero point of one quint8 activation.
struct ActivationQParams {
  double scale = 1.0;
  int64_t zero_point = 0;
};

// A convolution as ResNetInt8's passes see it: the folded float weights, and
// its number among the network's convolutions.
struct FoldedConv {
  const at::Tensor& weight;
  const at::Tensor& bias;
  int64_t stride, padding;
  size_t index;
};

// Environment variable that hides the quantized engines, so that int8's
// fallback to fp32 can be exercised (and forced) on any machine.
constexpr const char* kHideQuantizedEnginesEnv = "VISUALSEARCH_HIDE_QUANTIZED_ENGINES";

// Selects a quantized engine this LibTorch and CPU can run (oneDNN, else
// QNNPACK) for the whole process; false, with *why_not saying why in a
// sentence, when there is none.
bool select_quantized_engine(std::string* why_not);

// "scale:zero_point;..." with scales that read back exactly, whatever the
// locale; parse throws vs::Error (kind Corrupt) naming what is malformed.
std::string format_activation_qparams(const std::vector<ActivationQParams>& params);
std::vector<ActivationQParams> parse_activation_qparams(const std::string& text);

// The first `limit` images under `folder` in its stable sorted order, through
// `preprocess` (the embedder's, as for frames), in batches. Files that are not
// images are passed over; unreadable or damaged ones too, with a line in
// *warnings. Throws vs::Error when the folder cannot be read or yields no image.
std::vector<at::Tensor> calibration_batches(
    const std::string& folder, int limit,
    const std::function<at::Tensor(const ImageView&)>& preprocess,
    std::vector<std::string>* warnings);

class ResNetInt8 {
 public:
  // Observes net's fp32 activations over the calibration batches (normalised
  // (N, 3, H, W) floats) at every quantization point: the input, every
  // convolution's output and every block's output.
  static std::vector<ActivationQParams> calibrate(const ResNet& net,
                                                  const std::vector<at::Tensor>& batches);

  // Quantizes and prepacks net's weights for the selected engine. Throws
  // vs::Error (kind Settings) when `activations` does not fit net.
  ResNetInt8(const ResNet& net, std::vector<ActivationQParams> activations);

  // (N, 3, H, W) normalised float batch -> (N, dims) float features.
  at::Tensor forward(const at::Tensor& input) const;
  const std::vector<ActivationQParams>& activations() const { return activations_; }

 private:
  // Runs net's structure through ops, which see each convolution as a
  // FoldedConv numbered in the order the constructor packs them.
  template <typename Ops>
  static at::Tensor walk(const ResNet& net, Ops& ops, const at::Tensor& input);
  static size_t points(const ResNet& net);

  std::vector<c10::IValue> packed_;  // per convolution, in walk order
  ResNet net_;                       // the structure; its weights are shared, not copied
  std::vector<ActivationQParams> activations_;
};

}  // namespace vs
