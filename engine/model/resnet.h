/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Native ResNet-18/34/50/101/152 on ATen ops, with torchvision's parameter
// names so that the official checkpoint files load as they are. Only the
// feature extractor is built: the output is layer4, globally average-pooled.
// Batch norms are folded into the convolutions (inference only).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vs {

class DnnlResNet;

bool is_resnet_arch(const std::string& name);

class ResNet {
 public:
  // Weights from a torchvision state dict file; throws vs::Error naming the
  // file and the first key that does not fit `arch`.
  static ResNet from_checkpoint(const std::string& arch, const std::string& path);
  // Deterministic weights drawn from `seed`: the same in every process.
  static ResNet random(const std::string& arch, uint64_t seed);

  // Prepares the weights for a device and dtype; forward() needs it. fp32 and
  // bf16 on the CPU run through oneDNN's primitives where they can
  // (dnnl_resnet.h), unless the environment has VISUALSEARCH_FP32_KERNELS=aten.
  void to(at::Device device, at::ScalarType dtype);
  // (N, 3, H, W) normalised batch -> (N, dims()) float features. If oneDNN
  // fails on a new batch shape, this and later calls run ATen's ops instead.
  at::Tensor forward(const at::Tensor& input);
  int dims() const { return dims_; }
  // Which kernels forward() runs, and why: a sentence for the logs.
  const std::string& kernels() const { return kernels_; }
  // True once oneDNN was meant to run but failed, and ATen's ops took over.
  bool kernels_degraded() const { return kernels_degraded_; }

 private:
  friend class ResNetBuilder;
  friend class ResNetInt8;  // reads the folded weights and the block structure

  struct Conv {
    at::Tensor weight, bias;          // folded, dense float: what to() starts from
    at::Tensor run_weight, run_bias;  // in the device, dtype and layout forward() uses
    int64_t stride = 1, padding = 0;
  };
  struct Block {
    Conv conv1, conv2, conv3, downsample;  // conv3 only in bottlenecks
    bool bottleneck = false, has_downsample = false;
  };

  at::Tensor conv(const at::Tensor& x, const Conv& c) const;
  void prepare_aten(at::Device device, at::ScalarType dtype);
  bool start_onednn();
  void fall_back(const std::string& why);
  template <typename F>
  void for_each_conv(F&& f);

  Conv stem_;
  std::vector<Block> blocks_;
  int dims_ = 0;
  at::ScalarType dtype_ = at::kFloat;
  // oneDNN tensors with weights reordered once: on CPUs, faster than dense
  // channels-last, whose convolutions reorder the weights on every call.
  bool mkldnn_ = false;
  // Borrows the weight and bias tensors above. A shared_ptr because its
  // deleter is bound in resnet.cpp: ResNet is destroyed where DnnlResNet is
  // an incomplete type.
  std::shared_ptr<DnnlResNet> dnnl_;
  std::string kernels_;
  bool kernels_degraded_ = false;
};

}  // namespace vs
