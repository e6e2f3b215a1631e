// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/dataset/image_folder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "engine/base/error.h"
#include "engine/base/folder_walk.h"

namespace vs {

namespace {

// FNV-1a over the seed and the path, then SplitMix64's finaliser: stable
// across runs and machines, unlike std::hash.
uint64_t split_key(uint32_t seed, const std::string& relative) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](unsigned char byte) { h = (h ^ byte) * 0x100000001b3ull; };
  for (int i = 0; i < 4; ++i) mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (char c : relative) mix(static_cast<unsigned char>(c));
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// Keeps the files of one side of the split, in walk order.
void keep_split(std::vector<FolderFile>* files, const ImageFolderOptions& options) {
  std::map<int, std::vector<std::pair<uint64_t, size_t>>> by_label;
  for (size_t i = 0; i < files->size(); ++i)
    by_label[(*files)[i].label].emplace_back(split_key(options.split_seed, (*files)[i].relative),
                                             i);
  std::vector<bool> query(files->size(), false);
  for (auto& [label, members] : by_label) {
    const int64_t n = static_cast<int64_t>(members.size());
    if (n < 2) continue;
    const int64_t wanted = std::llround(options.query_fraction * static_cast<double>(n));
    std::sort(members.begin(), members.end());
    for (int64_t q = 0; q < std::clamp<int64_t>(wanted, 1, n - 1); ++q)
      query[members[q].second] = true;
  }
  const bool want_queries = options.split == FolderSplit::Queries;
  std::vector<FolderFile> kept;
  for (size_t i = 0; i < files->size(); ++i)
    if (query[i] == want_queries) kept.push_back(std::move((*files)[i]));
  files->swap(kept);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

// "./a//b" and "a/b" name the same gallery file.
std::string normalize_relative(const std::string& path) {
  std::string out;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == ".") continue;
    out += (out.empty() ? "" : "/") + part;
  }
  return out;
}

// Label names by relative path, from the CSV's path and label columns.
std::map<std::string, std::string> read_label_csv(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in)
    throw Error(ErrorKind::Read, "cannot open the labels CSV " + csv_path + ": " +
                                     std::strerror(errno) +
                                     "; check the path in label-from=csv:FILE");
  std::ostringstream text;
  text << in.rdbuf();
  const std::vector<std::vector<std::string>> rows = parse_csv(text.str());
  if (rows.empty())
    throw Error(ErrorKind::Format, "the labels CSV " + csv_path +
                                       " is empty; it needs a header "
                                       "row naming a path and a label column (path,label)");
  int path_column = -1, label_column = -1;
  std::string found;
  for (size_t i = 0; i < rows[0].size(); ++i) {
    const std::string name = lower(trim(rows[0][i]));
    found += (found.empty() ? "" : ", ") + rows[0][i];
    if (name == "path") path_column = static_cast<int>(i);
    if (name == "label") label_column = static_cast<int>(i);
  }
  if (path_column < 0 || label_column < 0)
    throw Error(ErrorKind::Format,
                "the labels CSV " + csv_path + " has no " +
                    (path_column < 0 ? "'path'" : "'label'") + " column in its header (it has: " +
                    found + "); name the file column 'path' and the class column 'label'");
  std::map<std::string, std::string> labels;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string>& row = rows[r];
    if (row.size() <= static_cast<size_t>(std::max(path_column, label_column))) continue;
    const std::string label = trim(row[label_column]);
    if (!label.empty()) labels[normalize_relative(trim(row[path_column]))] = label;
  }
  return labels;
}

}  // namespace

void parse_label_from(const std::string& text, ImageFolderOptions* options) {
  if (text == "folder") {
    options->labels = LabelSource::Folder;
  } else if (text == "none") {
    options->labels = LabelSource::None;
  } else if (text.rfind("csv:", 0) == 0 && text.size() > 4) {
    options->labels = LabelSource::Csv;
    options->csv_path = text.substr(4);
  } else {
    throw Error(ErrorKind::Settings,
                "label-from '" + text +
                    "' is not understood: use 'folder' (the first-level "
                    "folder name), 'none', or 'csv:FILE' (a CSV with path and label columns)");
  }
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  size_t i = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    // A blank line is no row.
    if (row.size() > 1 || !row[0].empty() || field_started) rows.push_back(std::move(row));
    row.clear();
    field_started = false;
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !row.empty() || field_started) end_row();
  return rows;
}

ImageFolder ImageFolder::scan(const std::string& root_path, const ImageFolderOptions& options) {
  std::map<std::string, std::string> csv_labels;
  // The labels CSV may sit inside the gallery; it is no picture.
  FolderListing listing =
      walk_folder(root_path, options.recursive,
                  options.labels == LabelSource::Csv ? options.csv_path : std::string());
  if (options.labels == LabelSource::Csv) csv_labels = read_label_csv(options.csv_path);
  std::string root = root_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();

  ImageFolder folder;
  for (WalkedFile& file : listing.files)
    folder.files_.push_back({std::move(file.path), std::move(file.relative), -1});
  folder.skipped_ = std::move(listing.skipped);

  std::map<std::string, int> numbers;
  if (options.labels == LabelSource::Folder) {
    try {
      for (const std::string& name : list_folder(root)) {
        struct stat entry;
        if (stat((root + "/" + name).c_str(), &entry) == 0 && S_ISDIR(entry.st_mode))
          folder.label_names_.push_back(name);
      }
    } catch (const std::string&) {
      // Already reported by the walk.
    }
  } else if (options.labels == LabelSource::Csv) {
    std::set<std::string> names;
    for (const auto& [path, label] : csv_labels) names.insert(label);
    folder.label_names_.assign(names.begin(), names.end());
  }
  for (size_t i = 0; i < folder.label_names_.size(); ++i)
    numbers[folder.label_names_[i]] = static_cast<int>(i);

  for (FolderFile& file : folder.files_) {
    std::string name;
    if (options.labels == LabelSource::Folder) {
      const size_t slash = file.relative.find('/');
      if (slash != std::string::npos) name = file.relative.substr(0, slash);
    } else if (options.labels == LabelSource::Csv) {
      if (auto it = csv_labels.find(file.relative); it != csv_labels.end()) name = it->second;
    }
    if (auto it = numbers.find(name); !name.empty() && it != numbers.end()) file.label = it->second;
  }
  if (options.split != FolderSplit::All) keep_split(&folder.files_, options);
  return folder;
}

}  // namespace vs
