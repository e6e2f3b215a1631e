// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-retrievaleval
 * @title: retrievaleval
 *
 * Measures how well a nearest-neighbour search retrieves images of the same
 * class. Every buffer must carry a #GstVisualSearchSampleMeta (the query's label and
 * source, from cifarsrc) and a #GstVisualSearchNeighborsMeta (the ranked gallery items,
 * from faisssearch); buffers missing either, or whose sample has no label,
 * are counted and skipped.
 *
 * At EOS the element posts an element message named `retrieval-metrics` with
 * Precision@k, Recall@k, mAP@k, weighted precision@k (of the k-nearest
 * neighbours' label vote), MRR, top-1 accuracy and per-class figures,
 * logs them as a table (`GST_DEBUG=retrievaleval:4`) and, when
 * #GstRetrievalEval:output is set, writes them as JSON (schema
 * `visualsearch-retrieval-metrics/1`). An element writes nothing on stdout
 * that the application did not ask for: #GstRetrievalEval:print-table prints
 * the table there too, for gst-launch-1.0. The definitions are in
 * engine/eval/retrieval_metrics.h.
 *
 * Recall@k and mAP@k need the number of gallery items of each label, which
 * comes from the gallery's catalog. Behind a faisssearch the element finds it
 * by itself (faisssearch names its index in a sticky event before the first
 * frame); #GstRetrievalEval:index (the catalog is the index path + ".db") or
 * #GstRetrievalEval:catalog, when set, win over that.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 cifarsrc location=cifar-10-batches-py split=test ! \
 *     embedder index=train.faiss ! faisssearch index=train.faiss k=10 \
 *     post-messages=false ! retrievaleval k=1,5,10 output=metrics.json \
 *     print-table=true
 * ]|
 * With exclude-self=true (the gallery queried with its own images) faisssearch
 * must return one neighbour more than the largest k.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstretrievaleval.h"

#include <gst/visualsearch/visualsearchmeta.h>

#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/base/atomic_file.h"
#include "engine/index/catalog.h"
#include "engine/base/error.h"
#include "engine/eval/retrieval_metrics.h"
#include "engine/base/utf8.h"
#include "json/documents.h"
#include "elements.h"
#include "gstfaisssearch.h"
#include "element_error.h"

GST_DEBUG_CATEGORY_STATIC (gst_retrieval_eval_debug);
#define GST_CAT_DEFAULT gst_retrieval_eval_debug

#define DEFAULT_K "1,5,10"
#define DEFAULT_EXCLUDE_SELF FALSE
#define DEFAULT_PRINT_TABLE FALSE

enum
{
  PROP_0,
  PROP_K,
  PROP_EXCLUDE_SELF,
  PROP_OUTPUT,
  PROP_CATALOG,
  PROP_INDEX,
  PROP_PRINT_TABLE,
};

namespace {

/* One evaluation run, from start to stop: the gallery's catalog and the
 * figures accumulated so far. */
struct Evaluation
{
  Evaluation (std::string path, vs::Catalog gallery, std::vector<int> ks,
      bool exclude_self)
      : catalog_path (std::move (path)), catalog (std::move (gallery)),
        metrics (std::move (ks), exclude_self)
  {
    if (exclude_self) {
      for (const auto &item : catalog.items ())
        ++source_counts[item.source];
    }
  }

  /* faisssearch must deliver this many neighbours per frame so that every k
   * still has k of them once the query itself is dropped. */
  guint neighbours_needed () const
  {
    return metrics.max_k () + (metrics.exclude_self () ? 1 : 0);
  }

  std::string catalog_path;
  vs::Catalog catalog;
  std::unordered_map<std::string, int64_t> source_counts;
  vs::RetrievalMetrics metrics;
  guint64 skipped = 0;
};

} // namespace

struct _GstRetrievalEval
{
  GstBaseSink parent;

  /* properties, guarded by the object lock */
  gchar *k;
  gboolean exclude_self;
  gchar *output;
  gchar *catalog;
  gchar *index;
  gboolean print_table;

  /* the C++ state of a run: created once its catalog is loaded (at start,
   * or when faisssearch names it), destroyed in stop */
  Evaluation *evaluation;
  /* the catalog of this run could not be loaded: an error was posted */
  gboolean gallery_failed;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_retrieval_eval_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstRetrievalEval, gst_retrieval_eval,
    GST_TYPE_BASE_SINK,
    GST_DEBUG_CATEGORY_INIT (gst_retrieval_eval_debug, "retrievaleval", 0,
        "Retrieval quality of nearest-neighbour search"));
GST_ELEMENT_REGISTER_DEFINE (retrievaleval, "retrievaleval", GST_RANK_NONE,
    GST_TYPE_RETRIEVAL_EVAL);

static void gst_retrieval_eval_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_retrieval_eval_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_retrieval_eval_finalize (GObject *object);
static gboolean gst_retrieval_eval_start (GstBaseSink *sink);
static gboolean gst_retrieval_eval_stop (GstBaseSink *sink);
static gboolean gst_retrieval_eval_event (GstBaseSink *sink, GstEvent *event);
static GstFlowReturn gst_retrieval_eval_render (GstBaseSink *sink,
    GstBuffer *buffer);

static void
gst_retrieval_eval_class_init (GstRetrievalEvalClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *base_sink_class = GST_BASE_SINK_CLASS (klass);

  gobject_class->set_property = gst_retrieval_eval_set_property;
  gobject_class->get_property = gst_retrieval_eval_get_property;
  gobject_class->finalize = gst_retrieval_eval_finalize;

  g_object_class_install_property (gobject_class, PROP_K,
      g_param_spec_string ("k", "k values",
          "Comma-separated cut-offs at which to measure, e.g. \"1,5,10\"; the "
          "largest must not exceed the neighbours each frame carries (one "
          "fewer with exclude-self)",
          DEFAULT_K,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_EXCLUDE_SELF,
      g_param_spec_boolean ("exclude-self", "Exclude self",
          "Leave-one-out: drop the neighbour whose source is the query's own, "
          "for when the gallery is queried with its own images",
          DEFAULT_EXCLUDE_SELF,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_OUTPUT,
      g_param_spec_string ("output", "Output",
          "JSON file to write the figures to at EOS (replaced atomically); "
          "none when unset",
          NULL,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_CATALOG,
      g_param_spec_string ("catalog", "Catalog",
          "The gallery's SQLite catalog, which gives the number of gallery "
          "items per label; overrides the one derived from index, or from "
          "the faisssearch upstream",
          NULL,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_INDEX,
      g_param_spec_string ("index", "Index",
          "The gallery's FAISS index file, as given to faisssearch; its "
          "catalog (index + \".db\") is read. Unset: the index of the "
          "faisssearch upstream",
          NULL,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_PRINT_TABLE,
      g_param_spec_boolean ("print-table", "Print table",
          "Also print the figures as a table on stdout at EOS (for "
          "gst-launch-1.0); they are always in the retrieval-metrics element "
          "message and the debug log",
          DEFAULT_PRINT_TABLE,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "Retrieval evaluation",
      "Sink/Analysis",
      "Measures Precision@k, Recall@k, mAP@k, weighted P@k and MRR of the "
      "neighbours found for labelled query frames",
      "visualsearch developers");

  base_sink_class->start = GST_DEBUG_FUNCPTR (gst_retrieval_eval_start);
  base_sink_class->stop = GST_DEBUG_FUNCPTR (gst_retrieval_eval_stop);
  base_sink_class->event = GST_DEBUG_FUNCPTR (gst_retrieval_eval_event);
  base_sink_class->render = GST_DEBUG_FUNCPTR (gst_retrieval_eval_render);
}

static void
gst_retrieval_eval_init (GstRetrievalEval *self)
{
  self->k = g_strdup (DEFAULT_K);
  self->exclude_self = DEFAULT_EXCLUDE_SELF;
  self->print_table = DEFAULT_PRINT_TABLE;

  /* Metrics count every frame; nothing is gained by waiting for a clock. */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}

static void
gst_retrieval_eval_finalize (GObject *object)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (object);

  g_free (self->k);
  g_free (self->output);
  g_free (self->catalog);
  g_free (self->index);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_retrieval_eval_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_K:
      g_free (self->k);
      self->k = g_value_dup_string (value);
      break;
    case PROP_EXCLUDE_SELF:
      self->exclude_self = g_value_get_boolean (value);
      break;
    case PROP_OUTPUT:
      g_free (self->output);
      self->output = g_value_dup_string (value);
      break;
    case PROP_CATALOG:
      g_free (self->catalog);
      self->catalog = g_value_dup_string (value);
      break;
    case PROP_INDEX:
      g_free (self->index);
      self->index = g_value_dup_string (value);
      break;
    case PROP_PRINT_TABLE:
      self->print_table = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_retrieval_eval_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_K:
      g_value_set_string (value, self->k);
      break;
    case PROP_EXCLUDE_SELF:
      g_value_set_boolean (value, self->exclude_self);
      break;
    case PROP_OUTPUT:
      g_value_set_string (value, self->output);
      break;
    case PROP_CATALOG:
      g_value_set_string (value, self->catalog);
      break;
    case PROP_INDEX:
      g_value_set_string (value, self->index);
      break;
    case PROP_PRINT_TABLE:
      g_value_set_boolean (value, self->print_table);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* lifecycle */

/* The catalog set by the application (catalog, else index + ".db"); empty
 * when neither is set. */
static std::string
explicit_catalog (GstRetrievalEval *self)
{
  GST_OBJECT_LOCK (self);
  std::string path;
  if (self->catalog && *self->catalog)
    path = self->catalog;
  else if (self->index && *self->index)
    path = vs::catalog_path_for (self->index);
  GST_OBJECT_UNLOCK (self);
  return path;
}

/* Parses k; FALSE after posting an error. */
static gboolean
parse_ks (GstRetrievalEval *self, std::vector<int> *ks)
{
  GST_OBJECT_LOCK (self);
  const std::string k_list = self->k ? self->k : "";
  GST_OBJECT_UNLOCK (self);
  try {
    *ks = vs::parse_k_list (k_list);
  } catch (const vs::Error &e) {
    VS_ELEMENT_ERROR (self, e, ("Invalid k property: %s", e.what ()), (NULL));
    return FALSE;
  }
  return TRUE;
}

/* Loads the gallery's catalog and starts the evaluation; FALSE after posting
 * an error. */
static gboolean
load_gallery (GstRetrievalEval *self, const std::string &catalog_path)
{
  std::vector<int> ks;
  if (!parse_ks (self, &ks))
    return FALSE;
  GST_OBJECT_LOCK (self);
  const bool exclude_self = self->exclude_self;
  GST_OBJECT_UNLOCK (self);

  try {
    vs::Catalog gallery = vs::Catalog::load (catalog_path);
    auto evaluation = std::make_unique<Evaluation> (catalog_path,
        std::move (gallery), std::move (ks), exclude_self);
    const size_t gallery_size = evaluation->catalog.items ().size ();
    if (gallery_size < evaluation->neighbours_needed ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("k=%d needs %u neighbours per query%s, but the gallery in %s holds "
           "only %zu items.",
              evaluation->metrics.max_k (), evaluation->neighbours_needed (),
              exclude_self ? " (one more for exclude-self)" : "",
              catalog_path.c_str (), gallery_size),
          ("Lower the largest k or index more images."));
      return FALSE;
    }
    GST_INFO_OBJECT (self, "gallery %s: %zu items; k=%d max, exclude-self=%d",
        catalog_path.c_str (), gallery_size, evaluation->metrics.max_k (),
        exclude_self);
    self->evaluation = evaluation.release ();
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Could not read the gallery catalog %s.", catalog_path.c_str ()),
        ("%s", e.what ()));
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_retrieval_eval_start (GstBaseSink *sink)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (sink);
  const std::string catalog_path = explicit_catalog (self);

  self->gallery_failed = FALSE;
  if (!catalog_path.empty ())
    return load_gallery (self, catalog_path);
  /* The catalog comes with faisssearch's event; k is checked now. */
  std::vector<int> ks;
  return parse_ks (self, &ks);
}

/* Without a catalog by the first frame (or EOS) there is nothing to count
 * relevant items in; FALSE, with an error posted once. */
static gboolean
have_gallery (GstRetrievalEval *self)
{
  if (self->evaluation)
    return TRUE;
  if (!self->gallery_failed)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No gallery catalog to count relevant items in."),
        ("Put retrievaleval behind the faisssearch that searches the gallery, "
         "or set index= to that index (its catalog is the index path + "
         "\".db\"), or catalog= to the catalog itself."));
  self->gallery_failed = TRUE;
  return FALSE;
}

static gboolean
gst_retrieval_eval_stop (GstBaseSink *sink)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (sink);

  delete self->evaluation;
  self->evaluation = NULL;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* results at EOS */

static void
take_double_array (GstStructure *s, const gchar *field,
    const std::vector<double> &values)
{
  GValue array = G_VALUE_INIT;

  gst_value_array_init (&array, values.size ());
  for (const double v : values) {
    GValue item = G_VALUE_INIT;
    g_value_init (&item, G_TYPE_DOUBLE);
    g_value_set_double (&item, v);
    gst_value_array_append_and_take_value (&array, &item);
  }
  gst_structure_take_value (s, field, &array);
}

static void
set_figures (GstStructure *s, const vs::RetrievalFigures &f)
{
  gst_structure_set (s, "queries", G_TYPE_INT64, (gint64) f.queries,
      "queries-with-relevant", G_TYPE_INT64, (gint64) f.queries_with_relevant,
      "mrr", G_TYPE_DOUBLE, f.mrr, "accuracy", G_TYPE_DOUBLE, f.accuracy, NULL);
  take_double_array (s, "precision", f.precision);
  take_double_array (s, "recall", f.recall);
  take_double_array (s, "map", f.map);
  take_double_array (s, "weighted-precision", f.weighted_precision);
}

/* The element message: the overall figures as fields (arrays aligned with
 * "k") and one "class" structure per label in "per-class". */
static GstStructure *
summary_to_structure (const vs::RetrievalSummary &summary, guint64 skipped)
{
  GstStructure *s =
      gst_structure_new ("retrieval-metrics", "exclude-self", G_TYPE_BOOLEAN,
          summary.exclude_self, "skipped", G_TYPE_UINT64, skipped, NULL);

  GValue ks = G_VALUE_INIT;
  gst_value_array_init (&ks, summary.ks.size ());
  for (const int k : summary.ks) {
    GValue item = G_VALUE_INIT;
    g_value_init (&item, G_TYPE_INT);
    g_value_set_int (&item, k);
    gst_value_array_append_and_take_value (&ks, &item);
  }
  gst_structure_take_value (s, "k", &ks);
  set_figures (s, summary.overall);

  GValue classes = G_VALUE_INIT;
  gst_value_array_init (&classes, summary.per_class.size ());
  for (const auto &cls : summary.per_class) {
    GstStructure *c = gst_structure_new ("class", "label", G_TYPE_INT,
        cls.label, "label-name", G_TYPE_STRING, cls.label_name.c_str (), NULL);
    set_figures (c, cls.figures);
    GValue item = G_VALUE_INIT;
    g_value_init (&item, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&item, c);
    gst_value_array_append_and_take_value (&classes, &item);
  }
  gst_structure_take_value (s, "per-class", &classes);
  return s;
}

static void
write_json (const std::string &path, const std::string &json)
{
  vs::replace_file_atomically (path, [&json] (const std::string &tmp_path) {
    std::ofstream out (tmp_path, std::ios::binary | std::ios::trunc);
    out << json;
    out.close ();
    if (!out)
      throw vs::Error (vs::ErrorKind::Write,
          "could not write " + tmp_path
              + "; check that the disk has space and the directory is "
                "writable.");
  });
}

/* Reports the figures; FALSE after posting an error. */
static gboolean
gst_retrieval_eval_finish (GstRetrievalEval *self)
{
  Evaluation &evaluation = *self->evaluation;

  if (evaluation.skipped > 0) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT,
        ("%" G_GUINT64_FORMAT " buffers lacked sample or neighbours "
         "metadata, or a label, and were not counted.",
            evaluation.skipped),
        ("retrievaleval needs a GstVisualSearchSampleMeta (e.g. from cifarsrc) "
         "and a "
         "GstVisualSearchNeighborsMeta (from faisssearch) on each buffer."));
  }
  if (evaluation.metrics.queries () == 0) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT,
        ("No frame could be evaluated; all figures are zero."), (NULL));
  }

  const vs::RetrievalSummary summary = evaluation.metrics.summary ();
  GstStructure *s = summary_to_structure (summary, evaluation.skipped);
  GST_INFO_OBJECT (self, "%" GST_PTR_FORMAT, s);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));

  const std::string table = vs::retrieval_summary_to_table (summary);
  GST_INFO_OBJECT (self, "\n%s", table.c_str ());

  GST_OBJECT_LOCK (self);
  const std::string output = self->output ? self->output : "";
  const gboolean print_table = self->print_table;
  GST_OBJECT_UNLOCK (self);
  if (print_table)
    g_print ("%s", table.c_str ());
  if (output.empty ())
    return TRUE;

  try {
    write_json (output,
        vs::json::retrieval_metrics (summary, evaluation.skipped,
            evaluation.catalog_path, evaluation.catalog.items ().size ()));
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Could not write the metrics to %s.", output.c_str ()),
        ("%s", e.what ()));
    return FALSE;
  }
  GST_INFO_OBJECT (self, "wrote %s", output.c_str ());
  return TRUE;
}

static gboolean
gst_retrieval_eval_event (GstBaseSink *sink, GstEvent *event)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (sink);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
      && gst_event_has_name (event, VS_INDEX_EVENT) && !self->evaluation
      && !self->gallery_failed && explicit_catalog (self).empty ()) {
    const gchar *catalog =
        gst_structure_get_string (gst_event_get_structure (event), "catalog");
    GST_DEBUG_OBJECT (self, "faisssearch upstream reads the catalog %s",
        GST_STR_NULL (catalog));
    if (catalog && !load_gallery (self, catalog)) {
      self->gallery_failed = TRUE;
      gst_event_unref (event);
      return FALSE;
    }
  }
  /* Before chaining up, so the figures are on the bus ahead of EOS. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS
      && (!have_gallery (self) || !gst_retrieval_eval_finish (self))) {
    gst_event_unref (event);
    return FALSE;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (sink, event);
}

/* ------------------------------------------------------------------------ */
/* buffer path */

static GstFlowReturn
gst_retrieval_eval_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstRetrievalEval *self = GST_RETRIEVAL_EVAL (sink);
  if (!have_gallery (self))
    return GST_FLOW_ERROR;
  Evaluation &evaluation = *self->evaluation;

  const GstVisualSearchSampleMeta *sample =
      gst_buffer_get_visualsearch_sample_meta (buffer);
  const GstVisualSearchNeighborsMeta *found =
      gst_buffer_get_visualsearch_neighbors_meta (buffer);
  if (!sample || !found || sample->label < 0) {
    GST_LOG_OBJECT (self, "%" GST_PTR_FORMAT " skipped: %s", buffer,
        !sample      ? "no sample metadata"
            : !found ? "no neighbours metadata"
                     : "the sample has no label");
    ++evaluation.skipped;
    return GST_FLOW_OK;
  }

  if (found->n_neighbors < evaluation.neighbours_needed ()) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Query %s carries %u neighbours, but k=%d%s needs %u.",
            sample->source ? vs::valid_utf8 (sample->source).c_str ()
                           : "(no source)",
            found->n_neighbors, evaluation.metrics.max_k (),
            evaluation.metrics.exclude_self () ? " with exclude-self" : "",
            evaluation.neighbours_needed ()),
        ("Set faisssearch k to at least %u (and do not let max-distance drop "
         "neighbours), or lower retrievaleval's largest k.",
            evaluation.neighbours_needed ()));
    return GST_FLOW_ERROR;
  }

  vs::QueryResult query;
  query.label = sample->label;
  /* Reported in a GstStructure and in JSON, which both need UTF-8, whatever
   * the element upstream put in the meta. */
  query.label_name =
      vs::valid_utf8 (sample->label_name ? sample->label_name : "");
  query.source = sample->source ? sample->source : "";
  query.relevant_in_gallery = evaluation.catalog.count_label (sample->label);
  if (evaluation.metrics.exclude_self ()) {
    const auto copies = evaluation.source_counts.find (query.source);
    if (copies != evaluation.source_counts.end ())
      query.self_in_gallery = copies->second;
  }
  query.neighbours.reserve (found->n_neighbors);
  for (guint i = 0; i < found->n_neighbors; ++i) {
    const GstVisualSearchNeighbor &n = found->neighbors[i];
    query.neighbours.push_back ({n.label, n.source ? n.source : ""});
  }

  evaluation.metrics.add (query);
  return GST_FLOW_OK;
}
