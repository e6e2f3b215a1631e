/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Image embeddings: torchvision-exact preprocessing followed by a ResNet
// (native C++, torchvision parameter names) or any TorchScript module.
// This header is free of LibTorch so that elements can include it cheaply.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/error.h"

namespace vs {

// AUTO picks, when the model loads, the fastest arithmetic whose embeddings stay
// within kAutoMinCosine of fp32 on this CPU, by measuring fp32 and (where the
// CPU has native bf16) bf16 on a batch of EmbeddingConfig::batch_size; bf16
// must be kAutoMinSpeedup times as fast to be chosen. The verdict is cached
// (engine/model/auto_precision_cache.h); active_precision() and
// precision_reason() tell what was chosen and the figures.
// INT8 (native ResNets only) quantizes post-training, with activation ranges
// calibrated on images (EmbeddingConfig::calibration_location) or given
// (EmbeddingConfig::int8_activations); AUTO never picks it.
enum class Precision { FP32, BF16, AUTO, INT8 };
inline const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::BF16: return "bf16";
    case Precision::AUTO: return "auto";
    case Precision::INT8: return "int8";
    default: return "fp32";
  }
}
constexpr double kAutoMinCosine = 0.999;
constexpr double kAutoMinSpeedup = 1.1;

// With resize > 0, frames whose resized longer side would exceed this many
// times resize are refused (the embedder's resize blurb repeats the figure).
constexpr int kMaxResizeAspect = 32;

struct EmbeddingConfig {
  // resnet18|resnet34|resnet50|resnet101|resnet152, or the path of a
  // TorchScript file whose forward maps a normalised NCHW float batch to (N, D).
  std::string model = "resnet18";
  // torchvision .pth state dict; empty = the official file in the torch hub
  // cache; "random" = deterministic random weights drawn from `seed`.
  std::string weights;
  uint64_t seed = 42;
  int input_size = 224;
  // Shorter side before the centre crop; 0 stretches straight to input_size.
  int resize = 256;
  std::array<float, 3> mean{{0.485f, 0.456f, 0.406f}};
  std::array<float, 3> std{{0.229f, 0.224f, 0.225f}};
  bool normalize = true;
  Precision precision = Precision::AUTO;
  // INT8: a folder of images like those to be embedded (read in the stable
  // sorted order of engine/base/folder_walk.h), of which the first
  // calibration_images are preprocessed as frames and observed in fp32...
  std::string calibration_location;
  int calibration_images = 64;
  // ...unless the activation parameters are given, as
  // EmbeddingEngine::int8_activations() wrote them (an index records them).
  std::string int8_activations;
  int threads = 0;  // 0 = number of cores
  // The batch size frames will run in: what precision=auto times (1 to 64).
  int batch_size = 1;
  std::string device = "cpu";
};

// One 8-bit interleaved image: red, green and blue are found at byte offsets
// within each pixel of `pixel_stride` bytes (1 with all offsets 0 for grey).
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int64_t stride = 0;  // bytes per row
  int pixel_stride = 3;
  std::array<int, 3> offsets{{0, 1, 2}};  // R, G, B
};

// Official torchvision file names and where torchvision caches them.
std::string official_weights_filename(const std::string& arch);
std::vector<std::string> default_weights_paths(const std::string& arch);

// The engine links LibTorch, which costs about a second to load. The plugin
// does not link it: load_embedding_engine() opens the engine module (built from
// this class) when the first embedder starts, so pipelines without an embedder
// start fast. What the plugin calls is virtual, so it needs no engine symbol
// at link time; a non-virtual member is for code linked with the engine.
class EmbeddingEngine {
 public:
  // Loads the model; throws vs::Error (kind NotFound when a file is missing).
  explicit EmbeddingEngine(const EmbeddingConfig& config);
  virtual ~EmbeddingEngine();
  EmbeddingEngine(const EmbeddingEngine&) = delete;
  EmbeddingEngine& operator=(const EmbeddingEngine&) = delete;

  // Throws vs::Error when frames of this size cannot be embedded (see
  // kMaxResizeAspect); add() refuses them too.
  virtual void check_frame_size(int width, int height) const;

  // Preprocesses an image into the pending batch; the pixels may be released
  // as soon as this returns.
  virtual void add(const ImageView& image);
  virtual size_t pending() const;
  // Embeds the pending batch: pending() x dims() floats, row-major (a model
  // whose output width differs from dims() is an error). The values may be
  // NaN or infinite if the model makes them so.
  virtual std::vector<float> run();
  virtual void clear();

  virtual int dims() const;
  // "resnet18:f37072fd", "resnet50:random-seed42", "torchscript:1a2b3c4d"
  virtual const std::string& model_id() const;
  // "rgb;resize=256;crop=224;mean=0.485,0.456,0.406;std=0.229,0.224,0.225"
  virtual const std::string& preprocessing_id() const;
  // The arithmetic actually used (never AUTO): bf16 asked for on a CPU without
  // native bf16 runs in fp32 (see native_bf16() in engine/base/cpu_features.h).
  virtual Precision active_precision() const;
  // Why active_precision() is what it is, in a sentence, for the debug log.
  virtual const std::string& precision_reason() const;
  // With active_precision() INT8, the activation parameters it quantizes with,
  // as EmbeddingConfig::int8_activations takes them; empty otherwise.
  virtual const std::string& int8_activations() const;
  // What the user should be told, e.g. that random weights are in use or that
  // bf16 fell back to fp32; one sentence each.
  virtual const std::vector<std::string>& warnings() const;
  // Which kernels run the model, in a sentence for the debug log: for fp32
  // ResNets on the CPU oneDNN's primitives, or ATen's ops and why. It may
  // change after run(): see kernels_degraded().
  virtual std::string kernels() const;
  // True once the faster kernels failed (e.g. oneDNN on a new batch shape)
  // and slower ones took over; the embeddings are the same.
  virtual bool kernels_degraded() const;

 private:
  // Test-only entry points (embedding_engine_testing.h).
  friend struct EmbeddingEngineTesting;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens the engine module (see EmbeddingEngine) and loads the model there.
// Throws vs::Error, also when the module cannot be opened.
std::unique_ptr<EmbeddingEngine> load_embedding_engine(const EmbeddingConfig& config);

// Environment variable naming the engine module's file, for installs moved
// after the build; by default it is found beside the plugin.
constexpr const char* kEngineModuleEnv = "VISUALSEARCH_ENGINE_MODULE";

}  // namespace vs
