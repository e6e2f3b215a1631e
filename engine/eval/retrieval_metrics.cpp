// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/eval/retrieval_metrics.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "engine/base/error.h"

namespace vs {

std::vector<int> parse_k_list(const std::string& text) {
  std::vector<int> ks;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    const std::string digits =
        first == std::string::npos ? std::string() : item.substr(first, last - first + 1);
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      throw Error(ErrorKind::Settings,
                  "the k list \"" + text + "\" has \"" + item +
                      "\", which is not a positive whole number; write it like \"1,5,10\".");
    }
    const int k = std::stoi(digits);
    if (k < 1) {
      throw Error(ErrorKind::Settings,
                  "the k list \"" + text + "\" has k=" + digits + "; every k must be at least 1.");
    }
    ks.push_back(k);
  }
  if (ks.empty()) {
    throw Error(ErrorKind::Settings,
                "the k list \"" + text + "\" is empty; write it like \"1,5,10\".");
  }
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

RetrievalMetrics::RetrievalMetrics(std::vector<int> ks, bool exclude_self)
    : ks_(std::move(ks)), exclude_self_(exclude_self) {
  std::sort(ks_.begin(), ks_.end());
  ks_.erase(std::unique(ks_.begin(), ks_.end()), ks_.end());
  if (ks_.empty() || ks_.front() < 1) {
    throw Error(ErrorKind::Settings,
                "retrieval metrics need at least one k, and every k must be at least 1.");
  }
  overall_.precision.assign(ks_.size(), 0.0);
  overall_.recall.assign(ks_.size(), 0.0);
  overall_.ap.assign(ks_.size(), 0.0);
  votes_.resize(ks_.size());
}

namespace {

// vote@k over the first k labels: the most common, a tie going to the tied
// label that comes first. Returns false when there is no label to vote with.
bool vote(const std::vector<int>& labels, int k, int& winner) {
  const size_t n = std::min(labels.size(), static_cast<size_t>(k));
  if (n == 0) return false;
  std::map<int, int> counts;
  for (size_t i = 0; i < n; ++i) ++counts[labels[i]];
  int best = 0;
  for (size_t i = 0; i < n; ++i) {  // in rank order: the nearest wins ties
    const int c = counts[labels[i]];
    if (c > best) {
      best = c;
      winner = labels[i];
    }
  }
  return true;
}

}  // namespace

void RetrievalMetrics::add(const QueryResult& query) {
  std::vector<int> relevant;  // rel_i over the list left after leave-one-out
  std::vector<int> labels;    // the labels of that list
  relevant.reserve(query.neighbours.size());
  labels.reserve(query.neighbours.size());
  const bool drop_self = exclude_self_ && !query.source.empty();
  for (const auto& n : query.neighbours) {
    if (drop_self && n.source == query.source) continue;
    relevant.push_back(n.label == query.label ? 1 : 0);
    labels.push_back(n.label);
  }
  for (size_t j = 0; j < ks_.size(); ++j) {
    int winner = 0;
    if (!vote(labels, ks_[j], winner)) continue;
    Votes& v = votes_[j][winner];
    ++v.cast;
    if (winner == query.label) ++v.correct;
  }

  int64_t r = query.relevant_in_gallery - (drop_self ? query.self_in_gallery : 0);
  r = std::max<int64_t>(r, 0);

  std::vector<double> precision(ks_.size()), recall(ks_.size()), ap(ks_.size());
  int64_t hits = 0;
  double precision_sum = 0.0;  // sum of P@i * rel_i
  size_t next = 0;
  for (int i = 1; i <= max_k(); ++i) {
    const int rel = static_cast<size_t>(i) <= relevant.size() ? relevant[i - 1] : 0;
    hits += rel;
    if (rel) precision_sum += static_cast<double>(hits) / i;
    if (i == ks_[next]) {
      precision[next] = static_cast<double>(hits) / i;
      recall[next] = r > 0 ? static_cast<double>(hits) / r : 0.0;
      ap[next] = r > 0 ? precision_sum / std::min<int64_t>(i, r) : 0.0;
      ++next;
    }
  }

  double reciprocal_rank = 0.0;
  const auto first = std::find(relevant.begin(), relevant.end(), 1);
  if (first != relevant.end()) {
    reciprocal_rank = 1.0 / static_cast<double>(first - relevant.begin() + 1);
  }
  const double top1 = !relevant.empty() && relevant[0] ? 1.0 : 0.0;

  accumulate(overall_, precision, recall, ap, r > 0, reciprocal_rank, top1);
  Accumulator& cls = per_class_[query.label];
  if (cls.queries == 0) {
    cls.precision.assign(ks_.size(), 0.0);
    cls.recall.assign(ks_.size(), 0.0);
    cls.ap.assign(ks_.size(), 0.0);
    cls.label_name = query.label_name;
  }
  accumulate(cls, precision, recall, ap, r > 0, reciprocal_rank, top1);
}

void RetrievalMetrics::accumulate(Accumulator& acc, const std::vector<double>& precision,
                                  const std::vector<double>& recall, const std::vector<double>& ap,
                                  bool has_relevant, double reciprocal_rank, double top1) const {
  ++acc.queries;
  for (size_t j = 0; j < ks_.size(); ++j) acc.precision[j] += precision[j];
  if (has_relevant) {
    ++acc.queries_with_relevant;
    for (size_t j = 0; j < ks_.size(); ++j) {
      acc.recall[j] += recall[j];
      acc.ap[j] += ap[j];
    }
  }
  acc.reciprocal_rank += reciprocal_rank;
  acc.top1 += top1;
}

RetrievalFigures RetrievalMetrics::means(const Accumulator& acc) const {
  RetrievalFigures f;
  f.queries = acc.queries;
  f.queries_with_relevant = acc.queries_with_relevant;
  const auto mean = [](double sum, int64_t n) { return n > 0 ? sum / n : 0.0; };
  for (size_t j = 0; j < ks_.size(); ++j) {
    f.precision.push_back(mean(acc.precision[j], acc.queries));
    f.recall.push_back(mean(acc.recall[j], acc.queries_with_relevant));
    f.map.push_back(mean(acc.ap[j], acc.queries_with_relevant));
  }
  f.mrr = mean(acc.reciprocal_rank, acc.queries);
  f.accuracy = mean(acc.top1, acc.queries);
  return f;
}

std::vector<double> RetrievalMetrics::vote_precision(int label) const {
  std::vector<double> precision(ks_.size(), 0.0);
  for (size_t j = 0; j < ks_.size(); ++j) {
    const auto found = votes_[j].find(label);
    if (found != votes_[j].end() && found->second.cast > 0) {
      precision[j] =
          static_cast<double>(found->second.correct) / static_cast<double>(found->second.cast);
    }
  }
  return precision;
}

RetrievalSummary RetrievalMetrics::summary() const {
  RetrievalSummary s;
  s.ks = ks_;
  s.exclude_self = exclude_self_;
  s.overall = means(overall_);
  s.overall.weighted_precision.assign(ks_.size(), 0.0);
  for (const auto& [label, acc] : per_class_) {
    RetrievalFigures figures = means(acc);
    figures.weighted_precision = vote_precision(label);
    if (overall_.queries > 0) {
      const double weight =
          static_cast<double>(acc.queries) / static_cast<double>(overall_.queries);
      for (size_t j = 0; j < ks_.size(); ++j) {
        s.overall.weighted_precision[j] += weight * figures.weighted_precision[j];
      }
    }
    s.per_class.push_back({label, acc.label_name, std::move(figures)});
  }
  return s;
}

// --- table output ------------------------------------------------------------

std::string class_key(const ClassFigures& c) {
  return c.label_name.empty() ? std::to_string(c.label) : c.label_name;
}

std::string retrieval_summary_to_table(const RetrievalSummary& summary) {
  const auto& ks = summary.ks;
  const auto& all = summary.overall;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "Retrieval metrics: %lld queries%s\n",
                static_cast<long long>(all.queries),
                summary.exclude_self ? " (leave-one-out)" : "");
  out += line;
  out += "      k     P@k     R@k   mAP@k    wP@k\n";
  for (size_t j = 0; j < ks.size(); ++j) {
    std::snprintf(line, sizeof line, "  %5d  %6.4f  %6.4f  %6.4f  %6.4f\n", ks[j], all.precision[j],
                  all.recall[j], all.map[j], all.weighted_precision[j]);
    out += line;
  }
  std::snprintf(line, sizeof line, "  MRR %6.4f   top-1 accuracy %6.4f\n", all.mrr, all.accuracy);
  out += line;
  if (all.queries_with_relevant < all.queries) {
    std::snprintf(
        line, sizeof line,
        "  %lld queries have no same-label item in the gallery (left out of R@k, mAP@k)\n",
        static_cast<long long>(all.queries - all.queries_with_relevant));
    out += line;
  }
  if (summary.per_class.empty()) return out;

  out += "\n  Per-class precision:\n  class            queries";
  for (const int k : ks) {
    std::snprintf(line, sizeof line, "  %6s", ("P@" + std::to_string(k)).c_str());
    out += line;
  }
  out += "\n";
  for (const auto& cls : summary.per_class) {
    std::snprintf(line, sizeof line, "  %-16.16s %7lld", class_key(cls).c_str(),
                  static_cast<long long>(cls.figures.queries));
    out += line;
    for (const double p : cls.figures.precision) {
      std::snprintf(line, sizeof line, "  %6.4f", p);
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace vs
