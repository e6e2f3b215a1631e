/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cifarsrc: CIFAR-10/100 images as 32x32 RGB video frames with their label. */
#ifndef __GST_CIFAR_SRC_H__
#define __GST_CIFAR_SRC_H__

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

/**
 * GstCifarSrcSplit:
 * @GST_CIFAR_SRC_SPLIT_TRAIN: the training batches, in file order
 * @GST_CIFAR_SRC_SPLIT_TEST: the test batch
 * @GST_CIFAR_SRC_SPLIT_ALL: the training batches, then the test batch
 */
typedef enum
{
  GST_CIFAR_SRC_SPLIT_TRAIN,
  GST_CIFAR_SRC_SPLIT_TEST,
  GST_CIFAR_SRC_SPLIT_ALL,
} GstCifarSrcSplit;

/**
 * GstCifarSrcLabelKind:
 * @GST_CIFAR_SRC_LABEL_KIND_FINE: the 10 CIFAR-10 or 100 CIFAR-100 classes
 * @GST_CIFAR_SRC_LABEL_KIND_COARSE: the 20 CIFAR-100 superclasses
 */
typedef enum
{
  GST_CIFAR_SRC_LABEL_KIND_FINE,
  GST_CIFAR_SRC_LABEL_KIND_COARSE,
} GstCifarSrcLabelKind;

#define GST_TYPE_CIFAR_SRC (gst_cifar_src_get_type ())
G_DECLARE_FINAL_TYPE (GstCifarSrc, gst_cifar_src, GST, CIFAR_SRC, GstPushSrc)

G_END_DECLS

#endif
