// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/catalog.h"

#include <sqlite3.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <mutex>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"
#include "engine/base/utf8.h"

namespace vs {

namespace {

constexpr int kSchemaVersion = 6;

struct DatabaseCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// One open catalog file; every failure becomes a vs::Error naming the file.
class Database {
 public:
  Database(const std::string& path, int flags, const std::string& action)
      : path_(path), writing_(flags & SQLITE_OPEN_CREATE) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK)
      throw Error((flags & SQLITE_OPEN_CREATE) ? ErrorKind::Write : ErrorKind::Read,
                  "Cannot " + action + " the catalog " + path + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) + ".");
  }

  void exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : sqlite3_errmsg(db_.get());
      sqlite3_free(message);
      fail(text);
    }
  }

  Statement prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      fail(sqlite3_errmsg(db_.get()));
    return Statement(stmt);
  }

  // SQLITE_ROW or SQLITE_DONE; anything else throws.
  int step(sqlite3_stmt* stmt) {
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(sqlite3_errmsg(db_.get()));
    return rc;
  }

  sqlite3* get() const { return db_.get(); }

  int user_version() {
    Statement version = prepare("PRAGMA user_version");
    step(version.get());
    return sqlite3_column_int(version.get(), 0);
  }

  void close() {
    if (sqlite3_close(db_.release()) != SQLITE_OK) fail("the database did not close cleanly");
  }

  // A catalog being written fails for want of room or rights, not because it
  // is damaged: rebuilding would meet the same wall.
  [[noreturn]] void fail(const std::string& what) const {
    if (writing_)
      throw Error(ErrorKind::Write, "Cannot write the catalog " + path_ + ": " + what + ".");
    throw Error(ErrorKind::Corrupt, "The catalog " + path_ + " is unusable: " + what +
                                        ". Rebuild the index and its catalog with faissindexer.");
  }

 private:
  std::string path_;
  bool writing_;
  std::unique_ptr<sqlite3, DatabaseCloser> db_;
};

std::string column_text(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  return text ? reinterpret_cast<const char*>(text) : std::string();
}

void bind_int64_or_null(Database& db, sqlite3_stmt* stmt, int index, std::optional<int64_t> value) {
  int rc = value ? sqlite3_bind_int64(stmt, index, *value) : sqlite3_bind_null(stmt, index);
  if (rc != SQLITE_OK) db.fail(sqlite3_errstr(rc));
}

void bind_text_or_null(Database& db, sqlite3_stmt* stmt, int index, const std::string& text) {
  int rc = text.empty() ? sqlite3_bind_null(stmt, index)
                        : sqlite3_bind_text(stmt, index, text.c_str(), -1, SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db.fail(sqlite3_errstr(rc));
}

// SQLite would open a FIFO and wait for a writer; refuse anything irregular.
void check_regular_catalog_file(const std::string& path) {
  const int fd = open_regular_file(path, "catalog");
  if (fd < 0 && errno == ENOENT)
    throw Error(ErrorKind::NotFound, "The catalog " + path +
                                         " does not exist; it is written beside the index by "
                                         "faissindexer (index path + \".db\"). Rebuild the index.");
  if (fd >= 0) ::close(fd);
}

// The schema version of db, refused when newer than this code reads.
int readable_schema(Database& db, const std::string& path) {
  const int schema = db.user_version();
  if (schema > kSchemaVersion)
    throw Error(ErrorKind::Format,
                "The catalog " + path + " has schema version " + std::to_string(schema) +
                    ", newer than this visualsearch reads (" + std::to_string(kSchemaVersion) +
                    "). Update visualsearch, or rebuild the index with this one.");
  return schema;
}

IndexFacts read_facts(Database& db, int schema) {
  Statement facts = db.prepare(
      std::string("SELECT model_id, preprocessing_id, dims, metric, index_type, count, created") +
      (schema >= 2 ? ", index_bytes, index_crc32" : "") + (schema >= 4 ? ", embedder_config" : "") +
      (schema >= 6 ? ", gallery_root" : "") + " FROM index_facts");
  if (db.step(facts.get()) != SQLITE_ROW) db.fail("the index_facts table is empty");
  IndexFacts f;
  f.model_id = column_text(facts.get(), 0);
  f.preprocessing_id = column_text(facts.get(), 1);
  f.dims = sqlite3_column_int(facts.get(), 2);
  f.metric = column_text(facts.get(), 3);
  f.index_type = column_text(facts.get(), 4);
  f.count = sqlite3_column_int64(facts.get(), 5);
  f.created = column_text(facts.get(), 6);
  if (schema >= 2 && sqlite3_column_type(facts.get(), 7) != SQLITE_NULL) {
    IndexDigest digest;
    digest.bytes = sqlite3_column_int64(facts.get(), 7);
    digest.crc32 = static_cast<uint32_t>(sqlite3_column_int64(facts.get(), 8));
    f.index_digest = digest;
  }
  if (schema >= 4) f.embedder_config = valid_utf8(column_text(facts.get(), 9));
  if (schema >= 6) {
    const auto* root = static_cast<const char*>(sqlite3_column_blob(facts.get(), 10));
    f.gallery_root.assign(root ? root : "", sqlite3_column_bytes(facts.get(), 10));
  }
  if (db.step(facts.get()) != SQLITE_DONE) db.fail("the index_facts table has several rows");
  return f;
}

}  // namespace

struct CatalogThumbnails::Handle {
  explicit Handle(Database database) : db(std::move(database)) {}
  Database db;
  std::mutex mutex;  // one statement, reset and stepped by one caller at a time
  Statement select;
};

CatalogThumbnails::CatalogThumbnails(std::string path, std::unique_ptr<Handle> handle)
    : path_(std::move(path)), handle_(std::move(handle)) {}

CatalogThumbnails::~CatalogThumbnails() = default;

// Keeps db (already open on path, of this schema) when it holds thumbnails.
static std::shared_ptr<CatalogThumbnails> adopt_thumbnails(const std::string& path, Database db,
                                                           int schema);

std::shared_ptr<CatalogThumbnails> CatalogThumbnails::open(const std::string& path) {
  check_regular_catalog_file(path);
  Database db(path, SQLITE_OPEN_READONLY, "open");
  const int schema = db.user_version();
  return adopt_thumbnails(path, std::move(db), schema);
}

static std::shared_ptr<CatalogThumbnails> adopt_thumbnails(const std::string& path, Database db,
                                                           int schema) {
  if (schema < 3) return nullptr;
  {
    Statement any = db.prepare("SELECT 1 FROM thumbnails LIMIT 1");
    if (db.step(any.get()) != SQLITE_ROW) return nullptr;
  }
  auto handle = std::make_unique<CatalogThumbnails::Handle>(std::move(db));
  handle->select = handle->db.prepare("SELECT jpeg FROM thumbnails WHERE id = ?");
  return std::shared_ptr<CatalogThumbnails>(new CatalogThumbnails(path, std::move(handle)));
}

std::vector<uint8_t> CatalogThumbnails::get(int64_t id) const {
  std::lock_guard<std::mutex> lock(handle_->mutex);
  sqlite3_stmt* select = handle_->select.get();
  sqlite3_reset(select);
  sqlite3_bind_int64(select, 1, id);
  if (handle_->db.step(select) != SQLITE_ROW) return {};
  const auto* bytes = static_cast<const uint8_t*>(sqlite3_column_blob(select, 0));
  std::vector<uint8_t> jpeg(bytes, bytes + sqlite3_column_bytes(select, 0));
  sqlite3_reset(select);
  return jpeg;
}

std::string catalog_path_for(const std::string& index_path) {
  return follow_links(index_path) + ".db";
}

std::string utc_timestamp_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

void check_same_embedding_space(const IndexFacts& stored, const IndexFacts& incoming,
                                const std::string& catalog_path) {
  std::string difference;
  if (!incoming.model_id.empty() && incoming.model_id != stored.model_id)
    difference = "different model: the index was built with " + stored.model_id +
                 ", the new embeddings come from " + incoming.model_id;
  else if (!incoming.preprocessing_id.empty() &&
           incoming.preprocessing_id != stored.preprocessing_id)
    difference = "different preprocessing: the index was built with \"" + stored.preprocessing_id +
                 "\", the new embeddings with \"" + incoming.preprocessing_id + "\"";
  else if (incoming.dims != 0 && incoming.dims != stored.dims)
    difference = "different dimensions: the index holds " + std::to_string(stored.dims) +
                 "-dimensional vectors, the new embeddings have " + std::to_string(incoming.dims);
  else if (!incoming.metric.empty() && incoming.metric != stored.metric)
    difference = "different metric: the index ranks by metric " + stored.metric + ", but metric " +
                 incoming.metric + " was asked for";
  if (difference.empty()) return;
  throw Error(ErrorKind::Mismatch,
              "The embeddings do not match the index described by " + catalog_path + " (" +
                  difference +
                  "). Use the same embedder settings (model, weights, input size, "
                  "resize) and metric as when the index was built, or build a new index.");
}

// items: in increasing id order.
static void read_file_identities(Database& db, std::vector<CatalogItem>& items) {
  Statement files = db.prepare("SELECT id, path, size, mtime_ns, time FROM files ORDER BY id");
  auto item = items.begin();
  while (db.step(files.get()) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(files.get(), 0);
    while (item != items.end() && item->id < id) ++item;
    if (item == items.end() || item->id != id)
      db.fail("the files table names item " + std::to_string(id) + ", which it lacks");
    FileIdentity file;
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(files.get(), 1));
    file.path.assign(bytes ? bytes : "", sqlite3_column_bytes(files.get(), 1));
    file.size = sqlite3_column_int64(files.get(), 2);
    file.mtime_ns = sqlite3_column_int64(files.get(), 3);
    if (sqlite3_column_type(files.get(), 4) != SQLITE_NULL)
      file.time = sqlite3_column_double(files.get(), 4);
    item->file = std::move(file);
  }
}

// The rejected_files table, when the catalog has one (see catalog.h).
static std::vector<RejectedFile> read_rejected_files(Database& db) {
  std::vector<RejectedFile> rejected;
  {
    Statement table =
        db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rejected_files'");
    if (db.step(table.get()) != SQLITE_ROW) return rejected;
  }
  Statement rows =
      db.prepare("SELECT path, size, mtime_ns, reason FROM rejected_files ORDER BY path");
  while (db.step(rows.get()) == SQLITE_ROW) {
    RejectedFile entry;
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(rows.get(), 0));
    entry.file.path.assign(bytes ? bytes : "", sqlite3_column_bytes(rows.get(), 0));
    entry.file.size = sqlite3_column_int64(rows.get(), 1);
    entry.file.mtime_ns = sqlite3_column_int64(rows.get(), 2);
    entry.reason = valid_utf8(column_text(rows.get(), 3));
    rejected.push_back(std::move(entry));
  }
  return rejected;
}

Catalog Catalog::load(const std::string& path) {
  check_regular_catalog_file(path);
  Database db(path, SQLITE_OPEN_READONLY, "open");
  Catalog catalog;

  const int schema = readable_schema(db, path);
  catalog.facts_ = read_facts(db, schema);
  const IndexFacts& f = catalog.facts_;

  Statement items = db.prepare("SELECT id, label, label_name, source FROM items ORDER BY id");
  while (db.step(items.get()) == SQLITE_ROW) {
    CatalogItem item;
    item.id = sqlite3_column_int64(items.get(), 0);
    if (sqlite3_column_type(items.get(), 1) != SQLITE_NULL) {
      // sqlite3_column_int would keep the low 32 bits of a larger label.
      const int64_t label = sqlite3_column_int64(items.get(), 1);
      if (label < std::numeric_limits<int>::min() || label > std::numeric_limits<int>::max())
        throw Error(ErrorKind::Corrupt,
                    "The catalog " + path + " gives item " + std::to_string(item.id) +
                        " the label " + std::to_string(label) +
                        ", which does not fit the 32-bit labels of visualsearch. Number the "
                        "classes from 0 and rebuild the index.");
      item.label = static_cast<int>(label);
    }
    item.label_name = valid_utf8(column_text(items.get(), 2));
    item.source = valid_utf8(column_text(items.get(), 3));
    if (!catalog.items_.empty() && item.id <= catalog.items_.back().id)
      db.fail("item ids are not in increasing order (id " + std::to_string(item.id) + " after " +
              std::to_string(catalog.items_.back().id) + ")");
    ++catalog.label_counts_[item.label];
    catalog.items_.push_back(std::move(item));
  }
  if (static_cast<int64_t>(catalog.items_.size()) != f.count)
    db.fail("it lists " + std::to_string(catalog.items_.size()) + " items but records a count of " +
            std::to_string(f.count));
  items.reset();
  if (schema >= 5) read_file_identities(db, catalog.items_);
  if (schema >= 6) catalog.rejected_ = read_rejected_files(db);
  // The same connection: a catalog renamed over this one meanwhile cannot
  // lend it thumbnails of other items.
  catalog.thumbnails_ = adopt_thumbnails(path, std::move(db), schema);
  return catalog;
}

IndexFacts Catalog::load_facts(const std::string& path) {
  check_regular_catalog_file(path);
  Database db(path, SQLITE_OPEN_READONLY, "open");
  return read_facts(db, readable_schema(db, path));
}

void Catalog::write(const std::string& path, const IndexFacts& facts,
                    const std::vector<CatalogItem>& items, const std::string& keep_thumbnails_from,
                    const std::vector<RejectedFile>& rejected) {
  // A leftover from a killed run must not be reopened and appended to.
  std::remove(path.c_str());
  Database db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "create");
  // The file is a private temporary until it is renamed into place, and
  // replace_file_atomically flushes it: a journal would only cost time.
  db.exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;");
  db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion) + ";");
  bool keep_thumbnails = false;
  if (!keep_thumbnails_from.empty()) {
    // SQLite cannot attach inside a transaction.
    Statement attach = db.prepare("ATTACH DATABASE ? AS previous");
    sqlite3_bind_text(attach.get(), 1, keep_thumbnails_from.c_str(), -1, SQLITE_TRANSIENT);
    db.step(attach.get());
    Statement version = db.prepare("PRAGMA previous.user_version");
    db.step(version.get());
    keep_thumbnails = sqlite3_column_int(version.get(), 0) >= 3;
  }
  db.exec(
      "BEGIN;"
      "CREATE TABLE thumbnails (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);"
      "CREATE TABLE files (id INTEGER PRIMARY KEY, path BLOB NOT NULL, "
      "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, time REAL);"
      "CREATE TABLE rejected_files (path BLOB PRIMARY KEY, size INTEGER NOT NULL, "
      "mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL);"
      "CREATE TABLE items (id INTEGER PRIMARY KEY, label INTEGER, label_name TEXT, "
      "source TEXT);"
      "CREATE TABLE index_facts (model_id TEXT, preprocessing_id TEXT, dims INTEGER, "
      "metric TEXT, index_type TEXT, count INTEGER, created TEXT, index_bytes INTEGER, "
      "index_crc32 INTEGER, embedder_config TEXT, gallery_root BLOB);");

  Statement fact = db.prepare("INSERT INTO index_facts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  bind_text_or_null(db, fact.get(), 1, facts.model_id);
  bind_text_or_null(db, fact.get(), 2, facts.preprocessing_id);
  sqlite3_bind_int(fact.get(), 3, facts.dims);
  bind_text_or_null(db, fact.get(), 4, facts.metric);
  bind_text_or_null(db, fact.get(), 5, facts.index_type);
  sqlite3_bind_int64(fact.get(), 6, facts.count);
  bind_text_or_null(db, fact.get(), 7, facts.created);
  bind_int64_or_null(
      db, fact.get(), 8,
      facts.index_digest ? std::optional<int64_t>(facts.index_digest->bytes) : std::nullopt);
  bind_int64_or_null(
      db, fact.get(), 9,
      facts.index_digest ? std::optional<int64_t>(facts.index_digest->crc32) : std::nullopt);
  bind_text_or_null(db, fact.get(), 10, facts.embedder_config);
  if (facts.gallery_root.empty())
    sqlite3_bind_null(fact.get(), 11);
  else
    sqlite3_bind_blob(fact.get(), 11, facts.gallery_root.data(),
                      static_cast<int>(facts.gallery_root.size()), SQLITE_STATIC);
  db.step(fact.get());

  Statement insert = db.prepare("INSERT INTO items VALUES (?, ?, ?, ?)");
  for (const CatalogItem& item : items) {
    sqlite3_reset(insert.get());
    sqlite3_bind_int64(insert.get(), 1, item.id);
    sqlite3_bind_int(insert.get(), 2, item.label);
    bind_text_or_null(db, insert.get(), 3, item.label_name);
    bind_text_or_null(db, insert.get(), 4, item.source);
    db.step(insert.get());
  }
  // Items removed since (an update) leave their thumbnails behind.
  if (keep_thumbnails)
    db.exec(
        "INSERT INTO thumbnails SELECT id, jpeg FROM previous.thumbnails "
        "WHERE id IN (SELECT id FROM items);");
  Statement thumbnail = db.prepare("INSERT INTO thumbnails VALUES (?, ?)");
  for (const CatalogItem& item : items) {
    if (item.thumbnail.empty()) continue;
    sqlite3_reset(thumbnail.get());
    sqlite3_bind_int64(thumbnail.get(), 1, item.id);
    sqlite3_bind_blob(thumbnail.get(), 2, item.thumbnail.data(),
                      static_cast<int>(item.thumbnail.size()), SQLITE_STATIC);
    db.step(thumbnail.get());
  }
  Statement file = db.prepare("INSERT INTO files VALUES (?, ?, ?, ?, ?)");
  for (const CatalogItem& item : items) {
    if (!item.file) continue;
    sqlite3_reset(file.get());
    sqlite3_bind_int64(file.get(), 1, item.id);
    sqlite3_bind_blob(file.get(), 2, item.file->path.data(),
                      static_cast<int>(item.file->path.size()), SQLITE_STATIC);
    sqlite3_bind_int64(file.get(), 3, item.file->size);
    sqlite3_bind_int64(file.get(), 4, item.file->mtime_ns);
    if (item.file->time >= 0)
      sqlite3_bind_double(file.get(), 5, item.file->time);
    else
      sqlite3_bind_null(file.get(), 5);
    db.step(file.get());
  }
  Statement reject = db.prepare("INSERT INTO rejected_files VALUES (?, ?, ?, ?)");
  for (const RejectedFile& entry : rejected) {
    sqlite3_reset(reject.get());
    sqlite3_bind_blob(reject.get(), 1, entry.file.path.data(),
                      static_cast<int>(entry.file.path.size()), SQLITE_STATIC);
    sqlite3_bind_int64(reject.get(), 2, entry.file.size);
    sqlite3_bind_int64(reject.get(), 3, entry.file.mtime_ns);
    sqlite3_bind_text(reject.get(), 4, entry.reason.c_str(), -1, SQLITE_STATIC);
    db.step(reject.get());
  }
  fact.reset();
  insert.reset();
  thumbnail.reset();
  file.reset();
  reject.reset();
  db.exec("COMMIT;");
  if (!keep_thumbnails_from.empty()) db.exec("DETACH DATABASE previous;");
  db.close();
}

void Catalog::write_atomically(const std::string& path, const IndexFacts& facts,
                               const std::vector<CatalogItem>& items,
                               const std::vector<RejectedFile>& rejected) {
  replace_file_atomically(path,
                          [&](const std::string& tmp) { write(tmp, facts, items, "", rejected); });
}

const CatalogItem* Catalog::item(int64_t id) const {
  // Ids are positions unless items were removed (galleryindexer updates).
  if (id >= 0 && id < static_cast<int64_t>(items_.size()) && items_[id].id == id)
    return &items_[id];
  auto it = std::lower_bound(items_.begin(), items_.end(), id,
                             [](const CatalogItem& item, int64_t key) { return item.id < key; });
  return it != items_.end() && it->id == id ? &*it : nullptr;
}

std::vector<uint8_t> Catalog::thumbnail(int64_t id) const {
  return thumbnails_ ? thumbnails_->get(id) : std::vector<uint8_t>();
}

int64_t Catalog::count_label(int label) const {
  auto it = label_counts_.find(label);
  return it == label_counts_.end() ? 0 : it->second;
}

}  // namespace vs
