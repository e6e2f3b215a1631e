/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The settings that define an embedder's embedding space, as they travel from
 * embedder to faissindexer and as the catalog keeps them, so that
 * `embedder index=FILE` can embed queries exactly as the gallery was.
 *
 * The embedder announces them in a sticky custom downstream event named
 * VS_EMBEDDER_SETTINGS_EVENT once its caps are set. An event rather than an
 * upstream query from faissindexer, or a field of GstVisualSearchEmbeddingMeta: a sticky
 * event follows the stream through queues, tees, converters and bins such as
 * cifarindexer, reaches every element downstream before the first buffer,
 * stays with the pad for late links, and leaves the meta's public struct
 * (and its ABI) alone. faissindexer stores the event's structure, serialised
 * with gst_structure_to_string(), as IndexFacts::embedder_config.
 *
 * Fields: model (string: a ResNet name, or the absolute path of the
 * TorchScript file), weights (string: "random" or the absolute path of a .pth;
 * absent for the official file found in the torch hub cache), seed (guint64,
 * with weights=random only), input-size and resize (int), mean and std (string,
 * "0.485,0.456,0.406"), normalize (boolean), and what these produced:
 * model-id (the weights' or TorchScript file's identity, e.g.
 * "resnet18:f37072fd", "torchscript:1a2b3c4d"), preprocessing-id and dims.
 * An embedder running int8 adds precision ("int8") and int8-activations (its
 * activation ranges, as vs::EmbeddingEngine::int8_activations() gives them):
 * quantization changes the embeddings, so queries must be quantized alike.
 * Older records lack both, as do those of fp32 and bf16, which embed alike.
 * An embedder that embeds regions (roi-types) adds roi-types (string): the
 * index then holds regions, `embedder index=` adopts roi-types unless set,
 * and faisssearch refuses frames as its queries (and regions as queries of
 * an index whose record lacks it).
 */
#ifndef __VISUALSEARCH_EMBEDDER_SETTINGS_H__
#define __VISUALSEARCH_EMBEDDER_SETTINGS_H__

#include <gst/gst.h>

#include <array>
#include <string>

#include "engine/model/embedding_engine.h"

#define VS_EMBEDDER_SETTINGS_EVENT "visualsearch-embedder-config"

struct EmbedderSettings
{
  /* model, weights, seed, input_size, resize, mean, std, normalize, and
   * precision with int8_activations when precision is INT8 (otherwise AUTO);
   * the rest (threads, device, fp32 or bf16) does not change the embedding
   * space. */
  vs::EmbeddingConfig config;
  std::string model_id;
  std::string preprocessing_id;
  int dims = 0;

  bool torchscript () const
  {
    return model_id.rfind ("torchscript:", 0) == 0;
  }
};

/* The event's structure (the caller owns it). File paths become absolute, so
 * that the index serves from any working directory. */
GstStructure *embedder_settings_to_structure (const EmbedderSettings &s);

/* Parses what embedder_settings_to_structure() made, as the catalog keeps
 * it. Throws vs::Error saying what is missing or malformed. */
EmbedderSettings embedder_settings_from_string (const std::string &text);

/* "0.485,0.456,0.406" <-> three floats; parse_triple is false unless the text
 * holds exactly three numbers. format_triple writes each float with the fewest
 * digits that read back as the same float, whatever the locale. */
bool parse_triple (const gchar *text, std::array<float, 3> *out);
std::string format_triple (const std::array<float, 3> &values);

#endif
