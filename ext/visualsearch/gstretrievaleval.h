/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* retrievaleval: retrieval quality (Precision@k, Recall@k, mAP@k, MRR) of the
 * neighbours faisssearch attaches to dataset frames. */
#ifndef __GST_RETRIEVAL_EVAL_H__
#define __GST_RETRIEVAL_EVAL_H__

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_RETRIEVAL_EVAL (gst_retrieval_eval_get_type ())
G_DECLARE_FINAL_TYPE (GstRetrievalEval, gst_retrieval_eval, GST, RETRIEVAL_EVAL,
    GstBaseSink)

G_END_DECLS

#endif
