/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What gallerysrc, given index=FILE, tells the indexer downstream about its
 * walk, so that `gallerysrc index=FILE ! embedder ! faissindexer
 * location=FILE mode=update` updates an index with no call between the
 * elements. Without index, gallerysrc announces nothing and faissindexer
 * builds a plain index.
 *
 * First, before the first file, a custom query, VS_GALLERY_QUERY, asks
 * downstream whether it keeps the items of the files the index holds
 * unchanged: faissindexer answers "update" (boolean) TRUE in mode=update,
 * FALSE when it rebuilds or appends, and gallerysrc then skips nothing.
 * Without an answer gallerysrc skips.
 *
 * Then two custom downstream out-of-band events
 * (GST_EVENT_CUSTOM_DOWNSTREAM_OOB), each a GstStructure named as below:
 *
 * - VS_GALLERY_FILE_EVENT, once per file of the walk, before the file is
 *   decoded: "root" (string, the folder walked, absolute), "path" (string,
 *   relative to root, bytes as on disk), "size" and "mtime-ns" (gint64; -1
 *   and 0 when the file cannot be stat'ed), "skipped" (boolean: the index
 *   named by gallerysrc's index property holds the file unchanged, so it
 *   gives no frame). faissindexer records root in the catalog, so that
 *   readers find the originals, and builds a gallery index (an IDMap2 whose
 *   items carry their files) unless it appends; it keeps the items of a
 *   skipped file and gives the new items of the others their file's
 *   identity. An optional "rejected" (string, one sentence) says the file
 *   is no readable picture or video: with "skipped" TRUE, gallerysrc passed
 *   over it without probing it, as the index records it unreadable with the
 *   same size and modification time; with "skipped" FALSE, it was probed in
 *   this walk and failed, and this second announcement of the file follows
 *   the first. faissindexer records such files in the catalog's
 *   rejected_files table.
 * - VS_GALLERY_WALKED_EVENT, once the walk has reached the end of the folder
 *   (not when a run is stopped early), just before EOS: "passed-over" and
 *   "unread" (GstValueArray of strings, relative paths): the entries that
 *   are no file to read, and those that could not be read, whose items are
 *   kept. Only then does faissindexer remove, at EOS, the items of files
 *   changed or gone.
 *
 * Out of band, because all the indexer needs is to hear of a file before the
 * file's frames, and of the walk's end before EOS, which an event pushed
 * before them guarantees, through queues too: a serialized event would make
 * an embedder that batches frames flush its batch at every file, and a
 * sticky one may not precede the caps and segment, which a walk of
 * unchanged files never sends. Events rather than a meta: a skipped file
 * gives no buffer to carry one. Other elements pass them on untouched. The
 * indexer handles them from the thread that pushes them, so what they
 * update is under a lock (vs::FileInventory). */
#ifndef __VISUALSEARCH_GALLERY_EVENTS_H__
#define __VISUALSEARCH_GALLERY_EVENTS_H__

#include <gst/gst.h>

#include <string>
#include <vector>

#include "engine/index/file_inventory.h"

#define VS_GALLERY_QUERY "visualsearch-gallery-update"
#define VS_GALLERY_FILE_EVENT "visualsearch-gallery-file"
#define VS_GALLERY_WALKED_EVENT "visualsearch-gallery-walked"

GstQuery *vs_gallery_query_new (void);
/* FALSE when query is no VS_GALLERY_QUERY; update is left alone when the
 * query was not answered. */
gboolean vs_gallery_query_parse (GstQuery *query, gboolean *update);
/* Answers a VS_GALLERY_QUERY; FALSE when query is no VS_GALLERY_QUERY. */
gboolean vs_gallery_query_answer (GstQuery *query, gboolean update);

/* rejected: why the file is unreadable; NULL when it is not known to be. */
GstEvent *vs_gallery_file_event_new (const std::string &root,
    const vs::FileIdentity &identity, gboolean skipped,
    const gchar *rejected = NULL);
/* FALSE when event is no well-formed VS_GALLERY_FILE_EVENT. *rejected is
 * empty when the event carries no "rejected". */
gboolean vs_gallery_file_event_parse (GstEvent *event, std::string *root,
    vs::FileIdentity *identity, gboolean *skipped, std::string *rejected);

GstEvent *vs_gallery_walked_event_new (const std::vector<vs::WalkGap> &gaps);
/* FALSE when event is no VS_GALLERY_WALKED_EVENT. */
gboolean vs_gallery_walked_event_parse (GstEvent *event,
    std::vector<vs::WalkGap> *gaps);

#endif
