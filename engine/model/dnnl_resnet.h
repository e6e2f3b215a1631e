// SPDX-License-Identifier: LGPL-2.1-or-later
// A ResNet feature extractor (CPU) run through oneDNN's own API rather than
// ATen's ops: each convolution carries its ReLU, and the last one of a block
// also the residual add, as post-ops; activations stay in the blocked layouts
// oneDNN picks from the first convolution to the global average pool, in fp32
// or in bf16 (bf16 weights and activations, fp32 biases and accumulation).
// Free of LibTorch headers: resnet.cpp hands over the folded weights.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace vs {

// A convolution with batch norm folded in, weights (out, in, k, k) and bias
// (out) as torch lays them out. Borrowed: they must outlive the DnnlResNet.
struct DnnlConvSpec {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int out = 0, in = 0, kernel = 1, stride = 1, padding = 0;
};

// conv1, conv2 and (bottlenecks) conv3; the last one adds the identity.
struct DnnlBlockSpec {
  std::vector<DnnlConvSpec> convs;
  std::optional<DnnlConvSpec> downsample;
};

class DnnlResNet {
 public:
  // What oneDNN refused (no implementation for this CPU, out of memory...):
  // the caller runs another path instead.
  struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  enum class Arithmetic { FP32, BF16 };

  // BF16 needs a CPU with native bf16: elsewhere oneDNN has no bf16
  // convolution and prepare() throws Failure.
  DnnlResNet(const DnnlConvSpec& stem, std::vector<DnnlBlockSpec> blocks,
             Arithmetic arithmetic = Arithmetic::FP32);
  ~DnnlResNet();
  DnnlResNet(const DnnlResNet&) = delete;
  DnnlResNet& operator=(const DnnlResNet&) = delete;

  // Creates the primitives for an (n, 3, h, w) batch now rather than at its
  // first forward(), so that a CPU oneDNN cannot serve shows at load time.
  void prepare(int n, int h, int w);
  // (n, 3, h, w) dense float batch -> (n, dims()) globally average-pooled
  // float features, whatever the arithmetic. Throws Failure.
  void forward(const float* nchw, int n, int h, int w, float* out);
  int dims() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vs
