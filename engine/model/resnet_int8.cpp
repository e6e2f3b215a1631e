// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/resnet_int8.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <sstream>

#include "engine/base/error.h"
#include "engine/base/folder_walk.h"
#include "engine/base/image_codec.h"

namespace vs {
namespace {

constexpr double kEps = std::numeric_limits<float>::epsilon();
constexpr int kHistogramBins = 2048;
constexpr int kQuint8Levels = 256;
// The widest activation range calibration accepts. A ResNet with sound
// weights and batch norms stays orders of magnitude inside it; past it one
// quantization step would swallow the whole signal (a step of 1e30 makes
// every embedding zero).
constexpr double kMaxActivationRange = 1e6;
// The steps calibration can produce: qparams_for_range's floor up to that
// range over 255. Recorded ranges outside them were tampered with (a step
// of 1e-9 saturates every activation and silently changes the neighbours).
constexpr double kMinScale = kEps;
constexpr double kMaxScale = kMaxActivationRange / (kQuint8Levels - 1);

// quint8 parameters covering [lo, hi] and zero, as PyTorch's observers
// compute them (affine, 0..255, round half to even).
ActivationQParams qparams_for_range(double lo, double hi) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  ActivationQParams q;
  q.scale = std::max((hi - lo) / (kQuint8Levels - 1), kEps);
  q.zero_point = std::clamp<int64_t>(-static_cast<int64_t>(std::nearbyint(lo / q.scale)), 0,
                                     kQuint8Levels - 1);
  return q;
}

// The squared error of quantizing a histogram's mass to 256 levels spread
// over bins [start, end]; PyTorch's HistogramObserver._compute_quantization_error.
double quantization_error(const std::vector<double>& hist, double bin_width, int start, int end) {
  const double dst_width = bin_width * (end - start + 1) / kQuint8Levels;
  if (dst_width == 0.0) return 0.0;
  auto norm = [](double begin, double end, double density) {
    return density * (end * end * end - begin * begin * begin) / 3.0;
  };
  const double last = kQuint8Levels - 1;
  double error = 0.0;
  for (size_t i = 0; i < hist.size(); ++i) {
    if (hist[i] == 0.0) continue;
    const double begin = (static_cast<double>(i) - start) * bin_width;
    const double end_value = begin + bin_width;
    const double dst_begin = std::clamp(std::floor(begin / dst_width), 0.0, last);
    const double dst_end = std::clamp(std::floor(end_value / dst_width), 0.0, last);
    const double density = hist[i] / bin_width;
    error += norm(begin - (dst_begin + 0.5) * dst_width, dst_width / 2, density);
    error += (dst_end - dst_begin - 1) * norm(-dst_width / 2, dst_width / 2, density);
    error += norm(-dst_width / 2, end_value - (dst_end + 0.5) * dst_width, density);
  }
  return error;
}

// The sub-range of a histogram over [lo, hi] whose quantization loses the
// least: outliers are clipped when that keeps finer steps for the bulk.
// PyTorch's HistogramObserver._non_linear_param_search, the observer its
// oneDNN configuration uses (min/max ranges lose too much on deep ResNets).
std::pair<double, double> best_range(const std::vector<double>& hist, double lo, double hi) {
  const int bins = static_cast<int>(hist.size());
  const double bin_width = (hi - lo) / bins;
  std::vector<double> cumulative(hist.size());
  std::partial_sum(hist.begin(), hist.end(), cumulative.begin());
  const double total = cumulative.back();
  constexpr double step = 1e-5;
  double alpha = 0.0, beta = 1.0;
  int start = 0, end = bins - 1;
  double best = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + step, next_beta = beta - step;
    int l = start, r = end;
    while (l < end && cumulative[l] <= next_alpha * total) ++l;
    while (r > start && cumulative[r] >= next_beta * total) --r;
    int next_start = start, next_end = end;
    if (l - start > end - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start && next_end == end) continue;
    const double error = quantization_error(hist, bin_width, next_start, next_end);
    if (error > best) break;
    best = error;
    start = next_start;
    end = next_end;
  }
  return {lo + bin_width * start, lo + bin_width * (end + 1)};
}

// One activation seen over the calibration batches: its range on the first
// pass, its histogram over that range on the second.
struct Observer {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  std::vector<double> hist = std::vector<double>(kHistogramBins, 0.0);

  ActivationQParams qparams() const {
    if (!(hi > lo)) return qparams_for_range(lo, hi);
    const auto [best_lo, best_hi] = best_range(hist, lo, hi);
    return qparams_for_range(best_lo, best_hi);
  }
};

// Runs the network in fp32 on the folded dense weights, observing each point.
struct Observing {
  std::vector<Observer>& observers;
  bool histogram_pass;

  at::Tensor see(at::Tensor x, size_t point) {
    Observer& o = observers[point];
    if (!histogram_pass) {
      o.lo = std::min(o.lo, x.min().item<double>());
      o.hi = std::max(o.hi, x.max().item<double>());
    } else if (o.hi > o.lo) {
      const at::Tensor h = at::histc(x, kHistogramBins, o.lo, o.hi).to(at::kDouble).contiguous();
      const double* p = h.data_ptr<double>();
      for (int i = 0; i < kHistogramBins; ++i) o.hist[i] += p[i];
    }
    return x;
  }
  at::Tensor input(const at::Tensor& x, size_t point) { return see(x, point); }
  at::Tensor conv(const at::Tensor& x, const FoldedConv& c, bool relu, size_t point) {
    at::Tensor y = at::conv2d(x, c.weight, c.bias, c.stride, c.padding);
    return see(relu ? y.relu_() : y, point);
  }
  at::Tensor add_relu(const at::Tensor& a, const at::Tensor& b, size_t point) {
    return see((a + b).relu_(), point);
  }
};

c10::OperatorHandle quantized_op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

// Through the dispatcher's boxed calls: the packed weights stay an IValue, so
// no quantized C++ header (and its ConvPackedParams type) is needed.
at::Tensor call(const c10::OperatorHandle& op, std::vector<c10::IValue> stack) {
  op.callBoxed(&stack);
  return stack.front().toTensor();
}

struct Quantized {
  const std::vector<c10::IValue>& packed;
  const std::vector<ActivationQParams>& q;

  at::Tensor input(const at::Tensor& x, size_t point) {
    // oneDNN's quantized convolutions work in channels-last.
    return at::quantize_per_tensor(x.contiguous(at::MemoryFormat::ChannelsLast), q[point].scale,
                                   q[point].zero_point, at::kQUInt8);
  }
  at::Tensor conv(const at::Tensor& x, const FoldedConv& c, bool relu, size_t point) {
    static const c10::OperatorHandle plain = quantized_op("quantized::conv2d", "new");
    static const c10::OperatorHandle with_relu = quantized_op("quantized::conv2d_relu", "new");
    return call(relu ? with_relu : plain,
                {x, packed[c.index], q[point].scale, q[point].zero_point});
  }
  at::Tensor add_relu(const at::Tensor& a, const at::Tensor& b, size_t point) {
    static const c10::OperatorHandle op = quantized_op("quantized::add_relu", "");
    return call(op, {a, b, q[point].scale, q[point].zero_point});
  }
};

}  // namespace

bool select_quantized_engine(std::string* why_not) {
  const char* hide = std::getenv(kHideQuantizedEnginesEnv);
  if (hide && *hide && std::strcmp(hide, "0") != 0) {
    if (why_not) *why_not = std::string(kHideQuantizedEnginesEnv) + " is set";
    return false;
  }
  const auto& engines = at::globalContext().supportedQEngines();
  for (const at::QEngine engine : {at::QEngine::ONEDNN, at::QEngine::QNNPACK}) {
    if (std::find(engines.begin(), engines.end(), engine) == engines.end()) continue;
    if (at::globalContext().qEngine() != engine) at::globalContext().setQEngine(engine);
    return true;
  }
  if (why_not) *why_not = "this LibTorch has no quantized CPU engine (neither oneDNN nor QNNPACK)";
  return false;
}

std::string format_activation_qparams(const std::vector<ActivationQParams>& params) {
  std::string out;
  for (const ActivationQParams& p : params) {
    char buf[64];
    // Shortest text that reads back as the same double, never localised.
    const auto end = std::to_chars(buf, buf + sizeof buf, p.scale).ptr;
    out += (out.empty() ? "" : ";") + std::string(buf, end) + ":" + std::to_string(p.zero_point);
  }
  return out;
}

std::vector<ActivationQParams> parse_activation_qparams(const std::string& text) {
  std::vector<ActivationQParams> params;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t stop = std::min(text.find(';', pos), text.size());
    const std::string item = text.substr(pos, stop - pos);
    const size_t colon = item.find(':');
    ActivationQParams p;
    const char* first = item.data();
    const char* last = item.data() + item.size();
    bool ok = colon != std::string::npos;
    if (ok) {
      const auto s = std::from_chars(first, first + colon, p.scale);
      const auto z = std::from_chars(first + colon + 1, last, p.zero_point);
      ok = s.ec == std::errc() && s.ptr == first + colon && z.ec == std::errc() && z.ptr == last &&
           p.scale >= kMinScale && p.scale <= kMaxScale && p.zero_point >= 0 &&
           p.zero_point < kQuint8Levels;
    }
    if (!ok) {
      std::ostringstream bounds;
      bounds << kMinScale << " to " << kMaxScale;
      throw Error(ErrorKind::Corrupt, "int8 activation parameter " +
                                          std::to_string(params.size() + 1) + " (\"" + item +
                                          "\") is not a scale calibration can produce (" +
                                          bounds.str() + ") and a zero point 0..255");
    }
    params.push_back(p);
    pos = stop + 1;
  }
  return params;
}

std::vector<at::Tensor> calibration_batches(
    const std::string& folder, int limit,
    const std::function<at::Tensor(const ImageView&)>& preprocess,
    std::vector<std::string>* warnings) {
  const std::string what = "calibration-location=" + folder;
  const std::string fix =
      "point it at a folder of pictures like those to be embedded, e.g. the gallery";
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec))
    throw Error(ErrorKind::NotFound, what + " is not a folder (" +
                                         (ec ? ec.message() : "not a directory") + "): " + fix);
  FolderListing scanned;
  try {
    scanned = walk_folder(folder, true);
  } catch (const Error& e) { throw Error(e.kind(), what + " cannot be read (" + e.what() + ")"); }
  load_image_codecs();  // so that a failure below is the file's own
  std::vector<at::Tensor> images;
  size_t skipped = 0;
  std::string first_failure;
  for (const WalkedFile& file : scanned.files) {
    if (static_cast<int>(images.size()) >= limit) break;
    if (!is_image_file(file.path)) continue;
    try {
      const RgbImage image = read_image(file.path);
      ImageView view;
      view.data = image.pixels.data();
      view.width = image.width;
      view.height = image.height;
      view.stride = int64_t{image.width} * 3;
      images.push_back(preprocess(view));
    } catch (const Error& e) {  // unreadable, damaged, or too elongated to preprocess
      if (skipped++ == 0) first_failure = e.what();
    }
  }
  if (images.empty())
    throw Error(ErrorKind::NotFound,
                what +
                    " holds no readable image (JPEG, PNG, WebP, TIFF, BMP, PNM) to calibrate "
                    "precision=int8 on" +
                    (skipped ? " (" + first_failure + ")" : "") + ": " + fix);
  if (skipped)
    warnings->push_back("precision=int8 calibrated on " + std::to_string(images.size()) +
                        " images of " + folder + ", passing over " + std::to_string(skipped) +
                        " it could not read (the first: " + first_failure + ")");
  std::vector<at::Tensor> batches;
  constexpr size_t batch = 16;
  for (size_t i = 0; i < images.size(); i += batch)
    batches.push_back(
        at::stack(at::TensorList(images).slice(i, std::min(batch, images.size() - i))));
  return batches;
}

template <typename Ops>
at::Tensor ResNetInt8::walk(const ResNet& net, Ops& ops, const at::Tensor& input) {
  size_t index = 0, point = 0;
  auto conv = [&](const at::Tensor& x, const ResNet::Conv& c, bool relu) {
    return ops.conv(x, FoldedConv{c.weight, c.bias, c.stride, c.padding, index++}, relu, point++);
  };
  at::Tensor x = ops.input(input, point++);
  x = conv(x, net.stem_, true);
  // Quantized max pooling reads dilation[1] even from a one-element default.
  x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1}, {1, 1});
  for (const ResNet::Block& b : net.blocks_) {
    const at::Tensor identity = b.has_downsample ? conv(x, b.downsample, false) : x;
    at::Tensor out = conv(x, b.conv1, true);
    out = conv(out, b.conv2, b.bottleneck);
    if (b.bottleneck) out = conv(out, b.conv3, false);
    x = ops.add_relu(out, identity, point++);
  }
  return x;
}

size_t ResNetInt8::points(const ResNet& net) {
  size_t n = 2;  // the input and the stem
  for (const ResNet::Block& b : net.blocks_)
    n += 3 + (b.bottleneck ? 1 : 0) + (b.has_downsample ? 1 : 0);
  return n;
}

std::vector<ActivationQParams> ResNetInt8::calibrate(const ResNet& net,
                                                     const std::vector<at::Tensor>& batches) {
  std::vector<Observer> observers(points(net));
  for (const bool histogram_pass : {false, true}) {
    Observing ops{observers, histogram_pass};
    for (const at::Tensor& batch : batches) walk(net, ops, batch.to(at::kFloat));
  }
  std::vector<ActivationQParams> params;
  for (const Observer& o : observers) {
    if (o.hi - o.lo > kMaxActivationRange) {
      std::ostringstream range;
      range << o.lo << " to " << o.hi;
      throw Error(ErrorKind::Corrupt,
                  "calibrating precision=int8, activation " + std::to_string(params.size() + 1) +
                      " of the network spans " + range.str() +
                      ", wider than int8 can represent: the model's weights are unsound; use "
                      "precision=fp32");
    }
    params.push_back(o.qparams());
  }
  return params;
}

ResNetInt8::ResNetInt8(const ResNet& net, std::vector<ActivationQParams> activations)
    : net_(net), activations_(std::move(activations)) {
  if (activations_.size() != points(net))
    throw Error(ErrorKind::Settings,
                "the int8 activation parameters hold " + std::to_string(activations_.size()) +
                    " points, but this network quantizes " + std::to_string(points(net)) +
                    ": they were calibrated for another architecture");
  static const c10::OperatorHandle prepack = quantized_op("quantized::conv2d_prepack", "");
  auto pack = [&](const ResNet::Conv& c) {
    // Symmetric per output channel, as PyTorch's per-channel weight observer.
    const at::Tensor scales =
        (c.weight.abs().amax({1, 2, 3}).to(at::kDouble) / 127.5).clamp_min(kEps);
    const at::Tensor weight = at::quantize_per_channel(
        c.weight, scales, at::zeros({c.weight.size(0)}, at::kLong), 0, at::kQInt8);
    auto pair = [](int64_t v) { return c10::List<int64_t>({v, v}); };
    std::vector<c10::IValue> stack{weight,          c.bias,  pair(c.stride),
                                   pair(c.padding), pair(1), int64_t{1}};
    prepack.callBoxed(&stack);
    packed_.push_back(std::move(stack.front()));
  };
  // The order walk() numbers the convolutions in.
  pack(net.stem_);
  for (const ResNet::Block& b : net.blocks_) {
    if (b.has_downsample) pack(b.downsample);
    pack(b.conv1);
    pack(b.conv2);
    if (b.bottleneck) pack(b.conv3);
  }
}

at::Tensor ResNetInt8::forward(const at::Tensor& input) const {
  Quantized ops{packed_, activations_};
  return walk(net_, ops, input.to(at::kFloat)).dequantize().mean({2, 3});
}

}  // namespace vs
