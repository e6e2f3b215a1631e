// SPDX-License-Identifier: LGPL-2.1-or-later
// Runs the embedding engine on an already preprocessed float32 NCHW batch, so
// the parity test can compare the model alone with torchvision's.
//
//   embed-tensor IN.f32 N H W OUT.f32 [key=value ...]
//
// keys: model, weights, precision (fp32|bf16|auto|int8), normalize (0|1), seed,
// threads, input_size and resize (the preprocessing of calibration images),
// calibration (a folder), calibration_images, int8_activations, repeat (runs
// the batch that often, for profilers; the output is the last run's).
// stdout: dims=, model_id=, active_precision=, precision_reason=,
// int8_activations=, kernels= lines, and a warning= line each.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "engine/model/embedding_engine_testing.h"

int
main (int argc, char **argv)
{
  if (argc < 6) {
    std::cerr << "usage: " << argv[0]
              << " IN.f32 N H W OUT.f32 [key=value ...]\n";
    return 2;
  }
  const int n = std::atoi (argv[2]), h = std::atoi (argv[3]),
            w = std::atoi (argv[4]);
  vs::EmbeddingConfig config;
  int repeat = 1;
  // The parity checks compare fp32 unless told otherwise.
  config.precision = vs::Precision::FP32;
  for (int i = 6; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find ('=');
    const std::string key = arg.substr (0, eq), value = arg.substr (eq + 1);
    if (key == "model")
      config.model = value;
    else if (key == "weights")
      config.weights = value;
    else if (key == "precision")
      config.precision = value == "bf16" ? vs::Precision::BF16
          : value == "auto"              ? vs::Precision::AUTO
          : value == "int8"              ? vs::Precision::INT8
                                         : vs::Precision::FP32;
    else if (key == "normalize")
      config.normalize = value != "0";
    else if (key == "seed")
      config.seed = std::stoull (value);
    else if (key == "threads")
      config.threads = std::stoi (value);
    else if (key == "batch_size")
      config.batch_size = std::stoi (value);
    else if (key == "input_size")
      config.input_size = std::stoi (value);
    else if (key == "resize")
      config.resize = std::stoi (value);
    else if (key == "calibration")
      config.calibration_location = value;
    else if (key == "calibration_images")
      config.calibration_images = std::stoi (value);
    else if (key == "int8_activations")
      config.int8_activations = value;
    else if (key == "repeat")
      repeat = std::stoi (value);
    else {
      std::cerr << "unknown key " << key << "\n";
      return 2;
    }
  }

  std::vector<float> input (static_cast<size_t> (n) * 3 * h * w);
  std::ifstream in (argv[1], std::ios::binary);
  if (!in.read (reinterpret_cast<char *> (input.data ()),
          input.size () * sizeof (float))) {
    std::cerr << argv[1] << ": expected " << input.size () << " floats\n";
    return 2;
  }
  try {
    vs::EmbeddingEngine engine (config);
    std::vector<float> out;
    for (int i = 0; i < repeat; ++i)
      out = vs::EmbeddingEngineTesting::embed_preprocessed (engine,
          input.data (), n, h, w);
    std::ofstream (argv[5], std::ios::binary)
        .write (reinterpret_cast<const char *> (out.data ()),
            out.size () * sizeof (float));
    std::cout << "dims=" << engine.dims ()
              << "\nmodel_id=" << engine.model_id () << "\nactive_precision="
              << vs::precision_name (engine.active_precision ())
              << "\nprecision_reason=" << engine.precision_reason ()
              << "\nint8_activations=" << engine.int8_activations ()
              << "\nkernels=" << engine.kernels () << "\n";
    for (const std::string &warning : engine.warnings ())
      std::cout << "warning=" << warning << "\n";
  } catch (const std::exception &e) {
    std::cerr << "ERROR: " << e.what () << "\n";
    return 1;
  }
  return 0;
}
