// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/resnet.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "engine/base/error.h"
#include "engine/model/checkpoint.h"
#include "engine/model/dnnl_resnet.h"

namespace vs {
namespace {

struct ArchSpec {
  bool bottleneck;
  std::array<int, 4> depths;
};

const std::map<std::string, ArchSpec>& archs() {
  static const std::map<std::string, ArchSpec> table = {
      {"resnet18", {false, {{2, 2, 2, 2}}}},  {"resnet34", {false, {{3, 4, 6, 3}}}},
      {"resnet50", {true, {{3, 4, 6, 3}}}},   {"resnet101", {true, {{3, 4, 23, 3}}}},
      {"resnet152", {true, {{3, 8, 36, 3}}}},
  };
  return table;
}

const ArchSpec& arch_spec(const std::string& arch) {
  auto it = archs().find(arch);
  if (it == archs().end())
    throw Error(
        ErrorKind::Settings,
        "unknown ResNet '" + arch + "': use resnet18, resnet34, resnet50, resnet101 or resnet152");
  return it->second;
}

// One convolution and the batch norm after it, named as in torchvision.
struct ConvSpec {
  std::string conv_key, bn_key;
  int64_t out, in, kernel, stride, padding;
};

// Block b of the network is convs [first[b], first[b+1]); the stem is conv 0.
struct Plan {
  std::vector<ConvSpec> convs;
  std::vector<size_t> block_first;
  bool bottleneck = false;
  int dims = 0;
};

Plan make_plan(const ArchSpec& spec) {
  Plan plan;
  plan.bottleneck = spec.bottleneck;
  plan.convs.push_back({"conv1", "bn1", 64, 3, 7, 2, 3});
  const int64_t expansion = spec.bottleneck ? 4 : 1;
  int64_t inplanes = 64;
  for (int layer = 0; layer < 4; ++layer) {
    const int64_t planes = int64_t{64} << layer;
    for (int i = 0; i < spec.depths[layer]; ++i) {
      const int64_t stride = (layer > 0 && i == 0) ? 2 : 1;
      const std::string p = "layer" + std::to_string(layer + 1) + "." + std::to_string(i) + ".";
      plan.block_first.push_back(plan.convs.size());
      if (spec.bottleneck) {
        plan.convs.push_back({p + "conv1", p + "bn1", planes, inplanes, 1, 1, 0});
        plan.convs.push_back({p + "conv2", p + "bn2", planes, planes, 3, stride, 1});
        plan.convs.push_back({p + "conv3", p + "bn3", planes * 4, planes, 1, 1, 0});
      } else {
        plan.convs.push_back({p + "conv1", p + "bn1", planes, inplanes, 3, stride, 1});
        plan.convs.push_back({p + "conv2", p + "bn2", planes, planes, 3, 1, 1});
      }
      if (stride != 1 || inplanes != planes * expansion)
        plan.convs.push_back(
            {p + "downsample.0", p + "downsample.1", planes * expansion, inplanes, 1, stride, 0});
      inplanes = planes * expansion;
    }
  }
  plan.block_first.push_back(plan.convs.size());
  plan.dims = static_cast<int>(inplanes);
  return plan;
}

// A convolution's weight and its batch norm's parameters, in double.
struct ConvBN {
  at::Tensor weight, gamma, beta, mean, var;
};
using ConvSource = std::function<ConvBN(const ConvSpec&)>;

std::string shape_str(at::IntArrayRef shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

at::ScalarType aten_dtype(DType t) {
  switch (t) {
    case DType::Float32: return at::kFloat;
    case DType::Float64: return at::kDouble;
    case DType::Float16: return at::kHalf;
    case DType::BFloat16: return at::kBFloat16;
    case DType::Int64: return at::kLong;
    case DType::Int32: return at::kInt;
    case DType::Int16: return at::kShort;
    case DType::Int8: return at::kChar;
    case DType::UInt8: return at::kByte;
    case DType::Bool: return at::kBool;
  }
  return at::kFloat;
}

at::Tensor to_double(const RawTensor& t, const std::string& path, const std::string& key) {
  int64_t last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i)
    if (t.shape[i] > 0) last += (t.shape[i] - 1) * t.strides[i];
  const int64_t elements = static_cast<int64_t>(t.storage->size() / dtype_size(t.dtype));
  if (t.storage_offset < 0 || last >= elements)
    throw Error(ErrorKind::Corrupt,
                path + ": tensor '" + key + "' lies outside its storage; the file is damaged");
  auto* base = const_cast<uint8_t*>(t.storage->data()) + t.storage_offset * dtype_size(t.dtype);
  return at::from_blob(base, t.shape, t.strides, at::TensorOptions().dtype(aten_dtype(t.dtype)))
      .to(at::kDouble);
}

// Names the architecture a torchvision ResNet state dict was saved from, or ""
// when it does not match any.
std::string detect_arch(const std::map<std::string, const RawTensor*>& tensors) {
  ArchSpec found{tensors.count("layer1.0.conv3.weight") > 0, {{0, 0, 0, 0}}};
  for (int layer = 0; layer < 4; ++layer)
    while (tensors.count("layer" + std::to_string(layer + 1) + "." +
                         std::to_string(found.depths[layer]) + ".conv1.weight"))
      ++found.depths[layer];
  for (const auto& [name, spec] : archs())
    if (spec.bottleneck == found.bottleneck && spec.depths == found.depths) return name;
  return "";
}

// Checks the keys and shapes the file declares against the plan, then reads
// only the tensors the network uses: nothing else the file holds (a large
// fc layer, an optimizer's state, a hostile record) is ever allocated.
ConvSource checkpoint_source(const std::string& arch, const Plan& plan,
                             const Checkpoint& checkpoint) {
  const std::string& path = checkpoint.path();
  std::map<std::string, const RawTensor*> declared;
  for (const auto& [key, tensor] : checkpoint.tensors()) declared.emplace(key, &tensor);

  const std::string found = detect_arch(declared);
  if (!found.empty() && found != arch)
    throw Error(ErrorKind::Settings, path + " holds " + found + " weights, not " + arch +
                                         ": set model=" + found + " or point weights= at a " +
                                         arch + " file");

  std::set<std::string> expected;
  std::vector<std::string> needed;
  uint64_t needed_bytes = 0;
  auto check = [&](const std::string& key, std::vector<int64_t> shape) {
    expected.insert(key);
    auto it = declared.find(key);
    if (it == declared.end())
      throw Error(ErrorKind::Settings, path + " is not a torchvision " + arch +
                                           " state dict: key '" + key + "' is missing");
    if (it->second->shape != shape)
      throw Error(ErrorKind::Settings, path + " does not fit " + arch + ": key '" + key +
                                           "' has shape " + shape_str(it->second->shape) +
                                           ", expected " + shape_str(shape));
    needed.push_back(key);
    needed_bytes += uint64_t(numel(*it->second)) * dtype_size(it->second->dtype);
  };
  for (const ConvSpec& c : plan.convs) {
    check(c.conv_key + ".weight", {c.out, c.in, c.kernel, c.kernel});
    for (const char* p : {".weight", ".bias", ".running_mean", ".running_var"})
      check(c.bn_key + p, {c.out});
    // Checkpoints from before PyTorch 0.4.1 lack this counter; it is unused anyway.
    expected.insert(c.bn_key + ".num_batches_tracked");
  }
  for (const auto& [key, tensor] : checkpoint.tensors()) {
    if (expected.count(key) || key.rfind("fc.", 0) == 0) continue;
    throw Error(ErrorKind::Settings,
                path + " does not fit " + arch + ": unexpected key '" + key + "'");
  }

  std::map<std::string, RawTensor> tensors;
  for (auto& [key, tensor] : checkpoint.load(needed, needed_bytes))
    tensors.emplace(key, std::move(tensor));
  return [tensors = std::move(tensors), path](const ConvSpec& c) {
    auto get = [&](const std::string& key) {
      const at::Tensor t = to_double(tensors.at(key), path, key);
      // A NaN or infinity here would make every embedding NaN.
      if (!at::isfinite(t).all().item<bool>())
        throw Error(ErrorKind::Corrupt,
                    path + ": tensor '" + key +
                        "' holds NaN or infinite values; the weights "
                        "are broken (a diverged training run?): use another file");
      return t;
    };
    ConvBN p{get(c.conv_key + ".weight"), get(c.bn_key + ".weight"), get(c.bn_key + ".bias"),
             get(c.bn_key + ".running_mean"), get(c.bn_key + ".running_var")};
    if ((p.var < 0).any().item<bool>())
      throw Error(ErrorKind::Corrupt, path + ": tensor '" + c.bn_key +
                                          ".running_var' holds negative variances; "
                                          "the weights are broken: use another file");
    return p;
  };
}

// Normal deviates from a generator whose sequence the C++ standard fixes, so
// every process and build draws the same weights for a seed.
class NormalSource {
 public:
  explicit NormalSource(uint64_t seed) : engine_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    constexpr double two_pi = 6.283185307179586476925286766559;
    // 53 random bits in (0, 1]: log() never sees zero.
    const double u1 = static_cast<double>((engine_() >> 11) + 1) * 0x1.0p-53;
    const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(two_pi * u2);
    has_spare_ = true;
    return r * std::cos(two_pi * u2);
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

ConvSource random_source(uint64_t seed) {
  auto normal = std::make_shared<NormalSource>(seed);
  return [normal](const ConvSpec& c) {
    // Kaiming normal (fan_out, ReLU), as torchvision initialises ResNets;
    // batch norms start as the identity.
    const double scale = std::sqrt(2.0 / static_cast<double>(c.out * c.kernel * c.kernel));
    at::Tensor weight = at::empty({c.out, c.in, c.kernel, c.kernel}, at::kDouble);
    double* w = weight.data_ptr<double>();
    for (int64_t i = 0; i < weight.numel(); ++i) w[i] = normal->next() * scale;
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    return ConvBN{weight, at::ones({c.out}, opts), at::zeros({c.out}, opts),
                  at::zeros({c.out}, opts), at::ones({c.out}, opts)};
  };
}

}  // namespace

class ResNetBuilder {
 public:
  static ResNet build(const Plan& plan, const ConvSource& source);
};

bool is_resnet_arch(const std::string& name) { return archs().count(name) > 0; }

ResNet ResNet::from_checkpoint(const std::string& arch, const std::string& path) {
  const Plan plan = make_plan(arch_spec(arch));
  // What a file of this architecture needs, with a wide margin (torch.save
  // takes ~64 directory bytes and ~125 pickle bytes per tensor; a training
  // checkpoint adds an optimizer's state): a small file must not be able to
  // declare gigabytes before its keys are checked.
  const uint64_t tensors = plan.convs.size() * 6 + 2;
  CheckpointLimits limits;
  limits.max_directory_bytes = (uint64_t(64) << 10) + tensors * 1024;
  limits.max_pickle_bytes = (uint64_t(64) << 10) + tensors * 1024;
  try {
    const Checkpoint checkpoint(path, limits);
    return ResNetBuilder::build(plan, checkpoint_source(arch, plan, checkpoint));
  } catch (const Error& e) {
    throw Error(e.kind(), std::string(e.what()) + " (see models/README.md)");
  }
}

ResNet ResNet::random(const std::string& arch, uint64_t seed) {
  const Plan plan = make_plan(arch_spec(arch));
  return ResNetBuilder::build(plan, random_source(seed));
}

ResNet ResNetBuilder::build(const Plan& plan, const ConvSource& source) {
  ResNet net;
  // Folding in double keeps the fused weights within float rounding of the
  // separate conv + batch norm that torchvision runs.
  auto fold = [&](const ConvSpec& c) {
    const ConvBN p = source(c);
    constexpr double eps = 1e-5;  // torchvision's BatchNorm2d default
    const at::Tensor scale = p.gamma / at::sqrt(p.var + eps);
    ResNet::Conv conv;
    conv.weight = (p.weight * scale.view({-1, 1, 1, 1})).to(at::kFloat).contiguous();
    conv.bias = (p.beta - p.mean * scale).to(at::kFloat).contiguous();
    conv.stride = c.stride;
    conv.padding = c.padding;
    return conv;
  };
  net.stem_ = fold(plan.convs[0]);
  for (size_t b = 0; b + 1 < plan.block_first.size(); ++b) {
    ResNet::Block block;
    size_t i = plan.block_first[b];
    const size_t end = plan.block_first[b + 1];
    block.conv1 = fold(plan.convs[i++]);
    block.conv2 = fold(plan.convs[i++]);
    block.bottleneck = plan.bottleneck;
    if (block.bottleneck) block.conv3 = fold(plan.convs[i++]);
    block.has_downsample = i < end;
    if (block.has_downsample) block.downsample = fold(plan.convs[i++]);
    net.blocks_.push_back(std::move(block));
  }
  net.dims_ = plan.dims;
  return net;
}

template <typename F>
void ResNet::for_each_conv(F&& f) {
  f(stem_);
  for (Block& b : blocks_) {
    f(b.conv1);
    f(b.conv2);
    if (b.bottleneck) f(b.conv3);
    if (b.has_downsample) f(b.downsample);
  }
}

void ResNet::to(at::Device device, at::ScalarType dtype) {
  dtype_ = dtype;
  dnnl_.reset();
  kernels_.clear();
  kernels_degraded_ = false;
  if (device.is_cpu() && (dtype == at::kFloat || dtype == at::kBFloat16) && start_onednn()) {
    // oneDNN keeps its own reordered copy; ATen's would only take memory.
    for_each_conv([](Conv& c) { c.run_weight = c.run_bias = at::Tensor(); });
    mkldnn_ = false;
    return;
  }
  prepare_aten(device, dtype);
}

void ResNet::prepare_aten(at::Device device, at::ScalarType dtype) {
  mkldnn_ = device.is_cpu() && at::hasMKLDNN();
  for_each_conv([&](Conv& c) {
    if (mkldnn_) {
      c.run_weight = at::mkldnn_reorder_conv2d_weight(
          c.weight.to_mkldnn(dtype), {c.padding, c.padding}, {c.stride, c.stride}, {1, 1}, 1);
      c.run_bias = c.bias.to_mkldnn(dtype);
    } else {
      c.run_weight = c.weight.to(device, dtype).contiguous(at::MemoryFormat::ChannelsLast);
      c.run_bias = c.bias.to(device, dtype);
    }
  });
  if (kernels_.empty()) kernels_ = mkldnn_ ? "ATen's oneDNN ops" : "ATen's ops";
}

// VISUALSEARCH_FP32_KERNELS=aten keeps ATen's ops (for fp32 and bf16), so
// that a benchmark can compare both paths in one run, and a user can step
// around a oneDNN fault.
bool ResNet::start_onednn() {
  const bool bf16 = dtype_ == at::kBFloat16;
  const char* env = std::getenv("VISUALSEARCH_FP32_KERNELS");
  if (env && std::string(env) == "aten") {
    kernels_ = "ATen's oneDNN ops (VISUALSEARCH_FP32_KERNELS=aten)";
    return false;
  }
#ifdef VS_HAVE_DNNL
  auto spec = [](const Conv& c) {
    DnnlConvSpec s;
    s.weight = c.weight.data_ptr<float>();
    s.bias = c.bias.data_ptr<float>();
    s.out = static_cast<int>(c.weight.size(0));
    s.in = static_cast<int>(c.weight.size(1));
    s.kernel = static_cast<int>(c.weight.size(2));
    s.stride = static_cast<int>(c.stride);
    s.padding = static_cast<int>(c.padding);
    return s;
  };
  std::vector<DnnlBlockSpec> blocks;
  for (const Block& b : blocks_) {
    DnnlBlockSpec block;
    block.convs = {spec(b.conv1), spec(b.conv2)};
    if (b.bottleneck) block.convs.push_back(spec(b.conv3));
    if (b.has_downsample) block.downsample = spec(b.downsample);
    blocks.push_back(std::move(block));
  }
  try {
    dnnl_ = std::make_shared<DnnlResNet>(
        spec(stem_), std::move(blocks),
        bf16 ? DnnlResNet::Arithmetic::BF16 : DnnlResNet::Arithmetic::FP32);
    // A CPU that oneDNN cannot serve shows here rather than mid-stream.
    dnnl_->prepare(1, 64, 64);
  } catch (const DnnlResNet::Failure& e) {
    dnnl_.reset();
    kernels_ = std::string("ATen's ops: ") + e.what();
    kernels_degraded_ = true;
    return false;
  }
  kernels_ = bf16 ? "oneDNN primitives in bf16 with fused ReLU and residual adds"
                  : "oneDNN primitives with fused ReLU and residual adds";
  return true;
#else
  kernels_ = "ATen's oneDNN ops (built without oneDNN's headers, libdnnl-dev)";
  return false;
#endif
}

#ifdef VS_HAVE_DNNL
void ResNet::fall_back(const std::string& why) {
  dnnl_.reset();
  kernels_ = "ATen's ops: " + why;
  kernels_degraded_ = true;
  prepare_aten(at::kCPU, dtype_);
}
#endif

at::Tensor ResNet::conv(const at::Tensor& x, const Conv& c) const {
  if (mkldnn_)
    return at::mkldnn_convolution(x, c.run_weight, c.run_bias, {c.padding, c.padding},
                                  {c.stride, c.stride}, {1, 1}, 1);
  return at::conv2d(x, c.run_weight, c.run_bias, c.stride, c.padding);
}

at::Tensor ResNet::forward(const at::Tensor& input) {
#ifdef VS_HAVE_DNNL
  if (dnnl_) {
    const at::Tensor x = input.to(at::kFloat).contiguous();
    at::Tensor out = at::empty({x.size(0), dims_}, at::kFloat);
    try {
      dnnl_->forward(x.data_ptr<float>(), static_cast<int>(x.size(0)), static_cast<int>(x.size(2)),
                     static_cast<int>(x.size(3)), out.data_ptr<float>());
      return out;
    } catch (const DnnlResNet::Failure& e) { fall_back(e.what()); }
  }
#endif
  at::Tensor x = mkldnn_ ? input.to(at::kFloat).contiguous().to_mkldnn(dtype_)
                         : input.to(dtype_).contiguous(at::MemoryFormat::ChannelsLast);
  x = conv(x, stem_).relu_();
  x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  for (const Block& b : blocks_) {
    const at::Tensor identity = b.has_downsample ? conv(x, b.downsample) : x;
    at::Tensor out = conv(x, b.conv1).relu_();
    out = conv(out, b.conv2);
    if (b.bottleneck) out = conv(out.relu_(), b.conv3);
    x = out.add_(identity).relu_();
  }
  return (mkldnn_ ? x.to_dense() : x).to(at::kFloat).mean({2, 3});
}

}  // namespace vs
