// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/embedding_engine.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <glib.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include "engine/base/cpu_features.h"
#include "engine/model/auto_precision_cache.h"
#include "engine/model/embedding_engine_testing.h"
#include "engine/model/model_id.h"
#include "engine/model/resnet.h"
#include "engine/model/resnet_int8.h"

namespace vs {
namespace {

const char* const kReadme = "see models/README.md";

bool file_exists(const std::string& path) {
  return g_file_test(path.c_str(), G_FILE_TEST_IS_REGULAR);
}

std::string sha256_prefix(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Read, "cannot read " + path);
  GChecksum* sum = g_checksum_new(G_CHECKSUM_SHA256);
  std::vector<char> chunk(1 << 20);
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0)
    g_checksum_update(sum, reinterpret_cast<const guchar*>(chunk.data()), in.gcount());
  const std::string hex = g_checksum_get_string(sum);
  g_checksum_free(sum);
  return hex.substr(0, 8);
}

// torchvision names its files <arch>-<first hex digits of the SHA-256>.pth and
// checks that prefix on download; trusting it spares hashing 100+ MB here.
std::string weights_id(const std::string& path) {
  static const std::regex official("[a-z0-9_]+-([0-9a-f]{8,64})\\.pth");
  const std::string base = path.substr(path.find_last_of('/') + 1);
  std::smatch m;
  if (std::regex_match(base, m, official)) return m[1].str().substr(0, 8);
  return sha256_prefix(path);
}

// The id must not depend on the locale (a decimal comma would split it).
std::string format_triple(const std::array<float, 3>& v) {
  std::string out;
  for (float x : v) {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    out += (out.empty() ? "" : ",") + std::string(g_ascii_formatd(buf, sizeof buf, "%g", x));
  }
  return out;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// What a LibTorch exception says in one line. An exception raised inside a
// TorchScript forward carries the interpreter's traceback first and the
// Python exception ("builtins.RuntimeError: ...") last.
std::string summary(const std::exception& e) {
  std::string text = e.what();
  if (text.rfind("The following operation failed in the TorchScript interpreter", 0) != 0)
    return first_line(text);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.substr(text.find_last_of('\n') + 1);
}

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

at::Device parse_device(const std::string& device) {
  if (device == "cpu") return at::kCPU;
  if (device.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA())
      throw Error(ErrorKind::Settings,
                  "device=" + device +
                      " is not available: this LibTorch was built without CUDA (or no GPU is "
                      "visible); use device=cpu");
    try {
      return at::Device(device);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::Settings,
                  "device='" + device + "' is not a valid device: " + first_line(e.what()));
    }
  }
  throw Error(ErrorKind::Settings, "unknown device '" + device + "': use cpu or cuda");
}

}  // namespace

std::string official_weights_filename(const std::string& arch) {
  static const std::pair<const char*, const char*> files[] = {
      {"resnet18", "resnet18-f37072fd.pth"},   {"resnet34", "resnet34-b627a593.pth"},
      {"resnet50", "resnet50-11ad3fa6.pth"},   {"resnet101", "resnet101-cd907fc2.pth"},
      {"resnet152", "resnet152-f82ba261.pth"},
  };
  for (const auto& [name, file] : files)
    if (arch == name) return file;
  throw Error(ErrorKind::Settings, "no official weights file is known for '" + arch + "'");
}

std::vector<std::string> default_weights_paths(const std::string& arch) {
  const std::string file = official_weights_filename(arch);
  std::vector<std::string> paths;
  if (const char* torch_home = std::getenv("TORCH_HOME"); torch_home && *torch_home)
    paths.push_back(std::string(torch_home) + "/hub/checkpoints/" + file);
  // torch.hub's own fallback when TORCH_HOME is unset.
  paths.push_back(std::string(g_get_user_cache_dir()) + "/torch/hub/checkpoints/" + file);
  return paths;
}

// Preprocessing exactly as torchvision's ImageClassification transforms do it
// on a uint8 tensor: Resize (bilinear, antialias, result rounded back to
// uint8), CenterCrop, scale to [0, 1], Normalize.
class Preprocessor {
 public:
  explicit Preprocessor(const EmbeddingConfig& c)
      : size_(c.input_size),
        resize_(c.resize),
        mean_values_(c.mean),
        std_values_(c.std),
        mean_(at::tensor(at::ArrayRef<float>(c.mean.data(), 3)).view({3, 1, 1})),
        std_(at::tensor(at::ArrayRef<float>(c.std.data(), 3)).view({3, 1, 1})) {
    if (size_ <= 0) throw Error(ErrorKind::Settings, "input-size must be positive");
    if (resize_ < 0) throw Error(ErrorKind::Settings, "resize must be 0 (stretch) or positive");
    // A NaN, an infinity or a zero here turns every embedding into NaN.
    for (float m : c.mean)
      if (!std::isfinite(m))
        throw Error(ErrorKind::Settings,
                    "mean=" + format_triple(c.mean) + " is not three finite numbers");
    for (float s : c.std)
      if (!std::isfinite(s) || !(s > 0.0f))
        throw Error(ErrorKind::Settings,
                    "std=" + format_triple(c.std) +
                        " is not three finite positive numbers (each channel is divided by it)");
    id_ = "rgb;resize=" + std::to_string(resize_) + ";crop=" + std::to_string(size_) +
          ";mean=" + format_triple(c.mean) + ";std=" + format_triple(c.std);
  }

  const std::string& id() const { return id_; }

  // Width and height of a width x height frame after the resize.
  std::pair<int64_t, int64_t> resized_size(int64_t width, int64_t height) const {
    if (resize_ == 0) return {size_, size_};
    // torchvision: the shorter side becomes `resize`, the longer one is truncated.
    const bool portrait = width <= height;
    const int64_t shorter = portrait ? width : height, longer = portrait ? height : width;
    const auto scaled = static_cast<int64_t>(static_cast<double>(resize_) * longer / shorter);
    return portrait ? std::make_pair(resize_, scaled) : std::make_pair(scaled, resize_);
  }

  // The resize keeps the aspect ratio, so a sliver of a frame (1x8192) would
  // become a huge image (256x2097152: 6.8 GB, 24 s) for one centre crop.
  void check_frame_size(int width, int height) const {
    if (width <= 0 || height <= 0)
      throw Error(ErrorKind::Format,
                  "invalid frame size " + std::to_string(width) + "x" + std::to_string(height));
    const auto [w, h] = resized_size(width, height);
    if (resize_ == 0 || std::max(w, h) <= kMaxResizeAspect * resize_) return;
    throw Error(ErrorKind::Format,
                "frames of " + std::to_string(width) + "x" + std::to_string(height) +
                    " would be resized to " + std::to_string(w) + "x" + std::to_string(h) +
                    " for resize=" + std::to_string(resize_) + ", more elongated than the " +
                    std::to_string(kMaxResizeAspect) +
                    ":1 the embedder accepts; crop them first "
                    "(e.g. aspectratiocrop or videocrop), or set resize=0 to stretch them to "
                    "input-size");
  }

  // (3, size, size) float tensor.
  at::Tensor operator()(const ImageView& v) const {
    if (!v.data || v.width <= 0 || v.height <= 0 || v.pixel_stride <= 0 ||
        v.stride < int64_t{v.width} * v.pixel_stride)
      throw Error(ErrorKind::Format, "invalid image: " + std::to_string(v.width) + "x" +
                                         std::to_string(v.height) + " with row stride " +
                                         std::to_string(v.stride));
    for (int o : v.offsets)
      if (o < 0 || o >= v.pixel_stride) throw Error(ErrorKind::Format, "invalid pixel layout");
    check_frame_size(v.width, v.height);

    const auto [out_w, out_h] = resized_size(v.width, v.height);
    if (out_w == v.width && out_h == v.height && v.width == size_ && v.height == size_)
      return normalize_only(v);

    auto* data = const_cast<uint8_t*>(v.data);
    const int64_t step = v.offsets[1] - v.offsets[0];
    at::Tensor rgb;
    if (step >= 0 && v.offsets[2] - v.offsets[1] == step) {
      // RGB, RGBx, xRGB, RGBA, ARGB and grey (step 0) are a strided view.
      rgb = at::from_blob(data + v.offsets[0], {v.height, v.width, 3},
                          {v.stride, v.pixel_stride, step}, at::kByte);
    } else {
      rgb = at::from_blob(data, {v.height, v.width, v.pixel_stride}, {v.stride, v.pixel_stride, 1},
                          at::kByte)
                .index_select(2, at::tensor({int64_t{v.offsets[0]}, int64_t{v.offsets[1]},
                                             int64_t{v.offsets[2]}}));
    }
    // One pass from interleaved uint8 to planar float.
    at::Tensor img =
        at::empty({1, 3, v.height, v.width}, at::kFloat).copy_(rgb.permute({2, 0, 1}).unsqueeze(0));

    if (out_h != v.height || out_w != v.width)
      img = at::_upsample_bilinear2d_aa(img, {out_h, out_w}, false, c10::nullopt, c10::nullopt)
                .round_();
    img = img.squeeze(0);
    if (resize_ > 0) img = center_crop(img);
    return img.div(255).sub_(mean_).div_(std_);
  }

 private:
  // A frame already at the input size (CIFAR's 32x32 at input-size=32) needs
  // neither resize nor crop: one pass straight to planar normalised float,
  // where ATen's ops cost more in dispatch than in arithmetic at this size.
  // Each value goes through the float operations of torchvision's ToTensor
  // and Normalize: x / 255, - mean, / std.
  at::Tensor normalize_only(const ImageView& v) const {
    at::Tensor img = at::empty({3, v.height, v.width}, at::kFloat);
    float* out = img.data_ptr<float>();
    const int64_t plane = int64_t{v.width} * v.height;
    for (int c = 0; c < 3; ++c) {
      const float mean = mean_values_[c], std = std_values_[c];
      float* dst = out + c * plane;
      for (int y = 0; y < v.height; ++y) {
        const uint8_t* src = v.data + y * v.stride + v.offsets[c];
        for (int x = 0; x < v.width; ++x)
          *dst++ = (static_cast<float>(src[x * v.pixel_stride]) / 255.0f - mean) / std;
      }
    }
    return img;
  }

  // torchvision's CenterCrop: zero padding when the image is smaller, and
  // Python's round() (half to even) for the offsets.
  at::Tensor center_crop(at::Tensor img) const {
    int64_t h = img.size(1), w = img.size(2);
    if (h < size_ || w < size_) {
      const int64_t pw = std::max<int64_t>(size_ - w, 0), ph = std::max<int64_t>(size_ - h, 0);
      img = at::constant_pad_nd(img, {pw / 2, (pw + 1) / 2, ph / 2, (ph + 1) / 2}, 0);
      h = img.size(1);
      w = img.size(2);
    }
    const auto top = static_cast<int64_t>(std::nearbyint((h - size_) / 2.0));
    const auto left = static_cast<int64_t>(std::nearbyint((w - size_) / 2.0));
    return img.slice(1, top, top + size_).slice(2, left, left + size_);
  }

  int64_t size_, resize_;
  std::array<float, 3> mean_values_, std_values_;
  at::Tensor mean_, std_;
  std::string id_;
};

struct EmbeddingEngine::Impl {
  EmbeddingConfig config;
  Preprocessor preprocess;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  int threads = 1;
  std::optional<ResNet> resnet;
  std::optional<ResNetInt8> int8;
  std::string int8_activations;
  std::optional<torch::jit::Module> script;
  int dims = 0;
  std::string model_id;
  std::string precision_reason = "fp32 as asked";
  std::vector<std::string> warnings;
  std::vector<at::Tensor> batch;

  explicit Impl(const EmbeddingConfig& c) : config(c), preprocess(c) {
    device = parse_device(c.device);
    threads = c.threads > 0 ? c.threads : default_threads();
    at::set_num_threads(threads);
    // auto loads fp32, the reference the faster arithmetic is checked against.
    const bool measure = c.precision == Precision::AUTO && auto_may_use_bf16();
    dtype = c.precision == Precision::BF16 ? choose_bf16() : at::kFloat;
    c10::InferenceMode guard;
    if (c.precision == Precision::INT8 && !is_resnet_arch(c.model))
      throw Error(ErrorKind::Settings,
                  "precision=int8 quantizes the native ResNets only; a TorchScript model runs as "
                  "exported: export an int8 one with models/export-torchscript.py --int8 "
                  "--calibrate DIR and run it with precision=fp32 (" +
                      std::string(kReadme) + ")");
    if (c.precision == Precision::INT8 && c.int8_activations.empty() &&
        c.calibration_location.empty())
      throw Error(ErrorKind::Settings,
                  "precision=int8 needs images to calibrate its activation ranges on: set "
                  "calibration-location to a folder of pictures like those to be embedded (e.g. "
                  "the gallery), or index= to an int8 index, whose catalog records them");
    if (is_resnet_arch(c.model))
      load_resnet();
    else
      load_torchscript();
    if (measure) choose_auto();
    if (c.precision == Precision::INT8) prepare_int8();
  }

  // Quantizes the loaded fp32 ResNet. A calibration folder without images is
  // the user's to fix; anything the CPU, device or LibTorch lacks leaves fp32
  // running.
  void prepare_int8() {
    std::string why_not;
    if (!device.is_cpu())
      why_not = "int8 runs on the CPU only, not on " + config.device;
    else
      select_quantized_engine(&why_not);
    if (!why_not.empty()) return int8_falls_back(why_not);

    std::vector<ActivationQParams> activations;
    std::string source;
    if (!config.int8_activations.empty()) {
      activations = parse_activation_qparams(config.int8_activations);
      source = "activation ranges as given (an int8 index records them)";
    } else {
      const std::vector<at::Tensor> batches = calibration_batches(
          config.calibration_location, config.calibration_images,
          [this](const ImageView& v) { return preprocess(v); }, &warnings);
      int64_t images = 0;
      for (const at::Tensor& b : batches) images += b.size(0);
      activations = ResNetInt8::calibrate(*resnet, batches);
      source = "activation ranges calibrated on " + std::to_string(images) + " images of " +
               config.calibration_location;
    }
    int8.emplace(*resnet, std::move(activations));
    try {
      // The quantized kernels refuse a CPU they cannot run on only when run.
      const int64_t s = config.input_size;
      int8->forward(at::zeros({1, 3, s, s}));
    } catch (const std::exception& e) {
      int8.reset();
      return int8_falls_back("its quantized kernels failed here (" + summary(e) + ")");
    }
    int8_activations = format_activation_qparams(int8->activations());
    precision_reason = "int8 as asked, quantized engine " +
                       std::string(c10::toString(at::globalContext().qEngine())) + ", " + source;
  }

  void int8_falls_back(const std::string& why) {
    warnings.push_back("precision=int8 runs as fp32: " + why +
                       ". The embeddings are those of fp32 (active-precision shows what ran).");
    precision_reason = "int8 asked, but " + why;
  }

  // bf16 only where the CPU runs it natively: elsewhere oneDNN's bf16 reorder
  // refuses to start (AVX2 only) or emulates it slower than fp32, so fp32 it
  // is, and the user is told once why.
  at::ScalarType choose_bf16() {
    std::string why_not;
    if (!device.is_cpu() || native_bf16(&why_not)) {
      precision_reason = "bf16 as asked";
      return at::kBFloat16;
    }
    warnings.push_back("precision=bf16 runs as fp32: " + why_not +
                       ". The embeddings are those of fp32 (active-precision shows what ran).");
    precision_reason = "bf16 asked, but " + why_not;
    return at::kFloat;
  }

  // Only native bf16 is faster than fp32 (emulated bf16 is two orders of
  // magnitude slower); other devices keep fp32, the one arithmetic checked there.
  bool auto_may_use_bf16() {
    std::string why_not;
    if (!device.is_cpu())
      precision_reason = "auto keeps fp32 on " + config.device;
    else if (!native_bf16(&why_not))
      precision_reason = "auto chose fp32: " + why_not;
    else
      return true;
    return false;
  }

  // The model as the other candidate arithmetic has it, beside the running
  // one while auto measures both.
  struct Candidate {
    at::ScalarType dtype = at::kFloat;
    std::optional<ResNet> resnet;
    std::optional<torch::jit::Module> script;
  };

  void swap_with(Candidate& other) {
    std::swap(dtype, other.dtype);
    std::swap(resnet, other.resnet);
    std::swap(script, other.script);
  }

  // The current model, converted to `to`, as a candidate (the current one is
  // left as it is).
  Candidate convert(at::ScalarType to) {
    Candidate c;
    c.dtype = to;
    if (resnet) {
      c.resnet = *resnet;  // shares the folded weights; to() makes its own kernels
      c.resnet->to(device, to);
    } else {
      c.script = script->deepcopy();
      c.script->to(to);
    }
    return c;
  }

  // Wall time of one run of the batch, in milliseconds.
  double time_ms(const at::Tensor& x) {
    const auto start = std::chrono::steady_clock::now();
    forward(x);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  // precision=auto on a CPU with native bf16: bf16 only if its embeddings
  // stay within kAutoMinCosine of fp32's (how close they come depends on the
  // model) *and* it runs a batch of the embedder's batch size measurably
  // faster than fp32 here (whether it does depends on the CPU and the
  // kernels). Inconclusive timings and any failure keep fp32. The verdict is
  // cached per CPU, model, input size, batch size and threads.
  void choose_auto() {
    const int batch = std::clamp(config.batch_size, 1, 64);
    const std::string key =
        auto_precision_key(model_id, config.input_size, batch, threads,
                           resnet ? resnet->kernels() : "the TorchScript interpreter");
    if (const std::optional<AutoPrecisionMeasurement> cached = read_auto_precision(key)) {
      if (cached->bf16) {
        try {
          Candidate bf16 = convert(at::kBFloat16);
          swap_with(bf16);
        } catch (const std::exception& e) {
          precision_reason = "auto chose fp32: bf16, chosen by an earlier measurement, failed (" +
                             summary(e) + ")";
          return;
        }
      }
      precision_reason =
          cached->why + " (measured earlier; cached in " + auto_precision_cache_file() + ")";
      return;
    }

    AutoPrecisionMeasurement m;
    // The fidelity check takes at least 4 images, in batches of the
    // embedder's size: a batch the user did not ask for must not run.
    const at::Tensor images = calibration_images((4 + batch - 1) / batch * batch);
    const at::Tensor x = images.narrow(0, 0, batch);
    std::vector<at::Tensor> reference;
    try {
      for (int64_t i = 0; i < images.size(0); i += batch)
        reference.push_back(forward(images.narrow(0, i, batch)));
    } catch (const std::exception& e) {
      // The same failure will reach the stream, with the frames that cause it.
      precision_reason =
          "auto kept fp32 without measuring: the model failed in fp32 on a "
          "calibration batch of " +
          std::to_string(batch) + " (" + summary(e) + ")";
      return;
    }
    std::string failure;
    Candidate other;
    try {
      other = convert(at::kBFloat16);
      swap_with(other);  // bf16 runs now, fp32 waits in `other`
      m.cosine = 1.0;
      for (int64_t i = 0, b = 0; i < images.size(0); i += batch, ++b) {
        const at::Tensor out = forward(images.narrow(0, i, batch));
        m.cosine =
            std::min(m.cosine, at::cosine_similarity(out, reference[b], 1).min().item<double>());
      }
      // Alternated, so that a load that changes mid-way favours neither.
      constexpr int kRounds = 3;
      double best[2] = {1e300, 1e300};  // fp32, bf16
      for (int round = 0; round < kRounds; ++round)
        for (int turn = 0; turn < 2; ++turn) {
          const bool bf16_now = dtype == at::kBFloat16;
          best[bf16_now] = std::min(best[bf16_now], time_ms(x));
          swap_with(other);
        }
      m.fp32_ms = best[0];
      m.bf16_ms = best[1];
    } catch (const std::exception& e) { failure = summary(e); }
    if (dtype == at::kBFloat16) swap_with(other);  // fp32 runs again

    char cos_text[G_ASCII_DTOSTR_BUF_SIZE], fp32_text[G_ASCII_DTOSTR_BUF_SIZE],
        bf16_text[G_ASCII_DTOSTR_BUF_SIZE], ratio_text[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(cos_text, sizeof cos_text, "%.5f", m.cosine);
    g_ascii_formatd(fp32_text, sizeof fp32_text, "%.1f", m.fp32_ms);
    g_ascii_formatd(bf16_text, sizeof bf16_text, "%.1f", m.bf16_ms);
    g_ascii_formatd(ratio_text, sizeof ratio_text, "%.2f",
                    m.bf16_ms > 0 ? m.fp32_ms / m.bf16_ms : 0.0);
    const std::string figures =
        " (a batch of " + std::to_string(batch) + " at " + std::to_string(config.input_size) + "x" +
        std::to_string(config.input_size) + ", best of 3: fp32 " + fp32_text + " ms, bf16 " +
        bf16_text + " ms, " + ratio_text + "x; bf16's cosine to fp32 " + cos_text + ")";
    if (!failure.empty()) {
      m.why = "auto chose fp32: bf16 failed (" + failure + ")";
    } else if (m.cosine < kAutoMinCosine) {
      m.why = std::string("auto chose fp32: bf16 came only within cosine ") + cos_text +
              " of fp32" + figures;
    } else if (m.bf16_ms * kAutoMinSpeedup > m.fp32_ms) {
      m.why = "auto chose fp32: bf16 is not measurably faster here" + figures;
    } else {
      m.bf16 = true;
      m.why = "auto chose bf16: the faster arithmetic here" + figures;
      swap_with(other);
    }
    precision_reason = m.why + ", measured now";
    std::string error;
    if (!write_auto_precision(key, m, &error)) precision_reason += "; not cached: " + error;
  }

  // Smooth random images (noise upsampled from 7x7) at the input size: the
  // low-frequency content photographs have, and the same images in every run.
  at::Tensor calibration_images(int64_t n) const {
    const int64_t s = config.input_size;
    at::Generator gen = at::detail::createCPUGenerator(20261126);
    const at::Tensor coarse = at::randn({n, 3, 7, 7}, gen);
    return at::upsample_bilinear2d(coarse, {s, s}, false);
  }

  void load_resnet() {
    const std::string& arch = config.model;
    if (config.weights == "random") {
      resnet = ResNet::random(arch, config.seed);
      model_id = random_model_id(arch, config.seed);
      warnings.push_back(
          arch + " runs with random weights (weights=random, seed " + std::to_string(config.seed) +
          "): the embeddings are reproducible but meaningless for visual similarity. "
          "Fetch real weights with models/fetch-weights.sh " +
          arch + " (" + kReadme + ").");
    } else {
      std::string path = config.weights;
      if (path.empty()) {
        const std::vector<std::string> tried = default_weights_paths(arch);
        for (const std::string& p : tried)
          if (path.empty() && file_exists(p)) path = p;
        if (path.empty()) {
          std::string list;
          for (const std::string& p : tried) list += (list.empty() ? "" : ", ") + p;
          throw Error(ErrorKind::NotFound,
                      "no " + arch + " weights found (looked for " + list +
                          "): run models/fetch-weights.sh " + arch +
                          ", set weights=/path/file.pth, or weights=random for an "
                          "offline try (" +
                          kReadme + ")");
        }
      } else if (!file_exists(path)) {
        throw Error(ErrorKind::NotFound, "weights file " + path +
                                             " does not exist: run "
                                             "models/fetch-weights.sh " +
                                             arch +
                                             ", fix weights=, or use "
                                             "weights=random for an offline try (" +
                                             kReadme + ")");
      }
      resnet = ResNet::from_checkpoint(arch, path);
      model_id = arch + ":" + weights_id(path);
    }
    resnet->to(device, dtype);
    dims = resnet->dims();
  }

  void load_torchscript() {
    const std::string& path = config.model;
    if (!file_exists(path))
      throw Error(ErrorKind::NotFound,
                  "model '" + path +
                      "' is neither a known ResNet (resnet18, resnet34, "
                      "resnet50, resnet101, resnet152) nor an existing TorchScript file; "
                      "export one with models/export-torchscript.py (" +
                      kReadme + ")");
    try {
      script = torch::jit::load(path, device);
      script->eval();
      if (dtype != at::kFloat) script->to(dtype);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::Format, path + " is not a loadable TorchScript module (" + summary(e) +
                                         "); export one with models/export-torchscript.py (" +
                                         kReadme + ")");
    }
    model_id = "torchscript:" + sha256_prefix(path);
    // The width every later batch must have too.
    const int64_t s = config.input_size;
    const at::Tensor probe = forward(at::zeros({1, 3, s, s}));
    if (probe.size(1) == 0)
      throw Error(ErrorKind::Format,
                  "TorchScript model " + path + " returned empty embeddings (" + kReadme + ")");
    dims = static_cast<int>(probe.size(1));
  }

  // (N, 3, H, W) float -> (N, D) float on the CPU, L2-normalised if asked.
  at::Tensor forward(const at::Tensor& input) {
    // OpenMP's thread count is per calling thread, and GStreamer streaming
    // threads start with the library default.
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    c10::InferenceMode guard;
    const int64_t n = input.size(0);
    at::Tensor out;
    if (int8) {
      out = int8->forward(input);
    } else if (resnet) {
      out = resnet->forward(input.to(device));
    } else {
      try {
        at::Tensor x = input.to(device, dtype).contiguous(at::MemoryFormat::ChannelsLast);
        out = script->forward({x}).toTensor();
      } catch (const std::exception& e) {
        throw Error("TorchScript model " + config.model + " failed: " + summary(e));
      }
      if (out.dim() != 2)
        throw Error(ErrorKind::Format, "TorchScript model " + config.model +
                                           " returned a tensor of " + std::to_string(out.dim()) +
                                           " dimensions for a batch of " + std::to_string(n) +
                                           "; its forward must return (N, D) embeddings (" +
                                           kReadme + ")");
      if (out.size(0) != n)
        throw Error(ErrorKind::Format,
                    "TorchScript model " + config.model + " returned embeddings of shape (" +
                        std::to_string(out.size(0)) + ", " + std::to_string(out.size(1)) +
                        ") for a batch of " + std::to_string(n) +
                        " frames; its forward must return one row per frame, (" +
                        std::to_string(n) + ", D) (" + kReadme + ")");
      // Callers read dims() values per frame.
      if (dims > 0 && out.size(1) != dims)
        throw Error(ErrorKind::Format,
                    "TorchScript model " + config.model + " returned embeddings of " +
                        std::to_string(out.size(1)) + " values for a batch of " +
                        std::to_string(n) + " frames, but of " + std::to_string(dims) +
                        " values when it was loaded; "
                        "its output width must not depend on the batch or the frames (" +
                        kReadme + ")");
    }
    out = out.to(at::kCPU, at::kFloat).contiguous();
    if (config.normalize)
      out = out / out.norm(2, {1}, true).clamp_min(1e-12);  // as torch.nn.functional.normalize
    return out;
  }

  static std::vector<float> to_vector(const at::Tensor& t) {
    const float* p = t.data_ptr<float>();
    return std::vector<float>(p, p + t.numel());
  }
};

namespace {

// LibTorch reports failures as c10::Error, whose text carries a C++ stack
// trace; callers get a vs::Error with its first line.
template <typename F>
auto translate_errors(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) { throw Error(what + ": " + first_line(e.what())); }
}

}  // namespace

EmbeddingEngine::EmbeddingEngine(const EmbeddingConfig& config) {
  translate_errors("cannot load model " + config.model,
                   [&] { impl_ = std::make_unique<Impl>(config); });
}

EmbeddingEngine::~EmbeddingEngine() = default;

void EmbeddingEngine::add(const ImageView& image) {
  translate_errors("cannot preprocess an image", [&] {
    c10::InferenceMode guard;
    impl_->batch.push_back(impl_->preprocess(image));
  });
}

size_t EmbeddingEngine::pending() const { return impl_->batch.size(); }

void EmbeddingEngine::clear() { impl_->batch.clear(); }

std::vector<float> EmbeddingEngine::run() {
  if (impl_->batch.empty()) return {};
  return translate_errors(impl_->model_id + " failed", [&] {
    at::Tensor input;
    {
      c10::InferenceMode guard;
      input = at::stack(impl_->batch);
    }
    impl_->batch.clear();
    return Impl::to_vector(impl_->forward(input));
  });
}

std::vector<float> EmbeddingEngineTesting::embed_preprocessed(EmbeddingEngine& engine,
                                                              const float* nchw, int n, int height,
                                                              int width) {
  if (n <= 0 || height <= 0 || width <= 0) throw Error("empty batch");
  EmbeddingEngine::Impl& impl = *engine.impl_;
  return translate_errors(impl.model_id + " failed", [&] {
    const at::Tensor input =
        at::from_blob(const_cast<float*>(nchw), {n, 3, height, width}, at::kFloat);
    return EmbeddingEngine::Impl::to_vector(impl.forward(input));
  });
}

void EmbeddingEngine::check_frame_size(int width, int height) const {
  impl_->preprocess.check_frame_size(width, height);
}

int EmbeddingEngine::dims() const { return impl_->dims; }
const std::string& EmbeddingEngine::model_id() const { return impl_->model_id; }
const std::string& EmbeddingEngine::preprocessing_id() const { return impl_->preprocess.id(); }
const std::vector<std::string>& EmbeddingEngine::warnings() const { return impl_->warnings; }

const std::string& EmbeddingEngine::precision_reason() const { return impl_->precision_reason; }

std::string EmbeddingEngine::kernels() const {
  return impl_->resnet ? impl_->resnet->kernels() : "the TorchScript interpreter";
}

bool EmbeddingEngine::kernels_degraded() const {
  return impl_->resnet && impl_->resnet->kernels_degraded();
}

Precision EmbeddingEngine::active_precision() const {
  if (impl_->int8) return Precision::INT8;
  return impl_->dtype == at::kBFloat16 ? Precision::BF16 : Precision::FP32;
}

const std::string& EmbeddingEngine::int8_activations() const { return impl_->int8_activations; }

}  // namespace vs
