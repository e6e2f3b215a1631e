/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the C examples share: running a pipeline that ends in an appsink named
 * "sink" and handing each of its buffers to the example. */
#ifndef EXAMPLE_PIPELINE_H
#define EXAMPLE_PIPELINE_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* Prints what the example reads from BUF, the FRAMEth buffer (from 0);
 * returns TRUE when BUF carried the metadata the example looks for. */
typedef gboolean (*ExampleFrameFunc) (guint frame, GstBuffer *buf);

/* Runs DESCRIPTION (gst-launch syntax) until EOS or an error, calls FUNC on
 * every buffer the appsink "sink" receives, then prints "N frames, M with
 * WHAT". Returns the exit status: 2 when the pipeline cannot be built or has
 * no such appsink, 1 when it failed or no buffer carried the metadata, else
 * 0. gst_init() must have been called. */
int example_run_pipeline (const gchar *description, ExampleFrameFunc func,
    const gchar *what);

G_END_DECLS

#endif /* EXAMPLE_PIPELINE_H */
