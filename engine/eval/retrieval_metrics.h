/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Retrieval quality of a nearest-neighbour search, from ranked result lists.
//
// Per query q with label y, a ranked neighbour list n_1, n_2, ... (nearest
// first) and R = the number of gallery items labelled y:
//   rel_i  = 1 when n_i's label is y, else 0 (and 0 past the end of the list)
//   P@k    = (sum_{i<=k} rel_i) / k
//   R@k    = (sum_{i<=k} rel_i) / R
//   AP@k   = (sum_{i<=k} P@i * rel_i) / min(k, R)
//   RR     = 1 / (rank of the first relevant neighbour in the whole returned
//            list), 0 when none is relevant
//   top-1  = rel_1
//   vote@k = the label most common among n_1..n_k (a tie goes to the tied
//            label ranked nearest); no neighbours, no vote
// Weighted precision@k is the precision of vote@k as a classifier, weighted
// by class support (scikit-learn's precision_score(average="weighted")):
//   prec_c@k = (queries labelled c with vote@k = c) / (queries with vote@k = c),
//              0 when no query's vote is c
//   wP@k     = sum over labels c of (queries labelled c / all queries) * prec_c@k
// Per class, the figure reported is prec_c@k, so the overall wP@k is the
// per-class figures averaged with the classes' query counts as weights.
// Reported figures are means over queries: P@k, MRR and top-1 accuracy over
// all queries; R@k and mAP@k over the queries with R > 0 (they are undefined
// for a label the gallery does not hold; such queries are counted apart).
// Per-class figures are the same means over the queries of one label.
//
// Leave-one-out (exclude_self): when the gallery is queried with its own
// images, every neighbour whose source equals the query's source is removed
// from the list before anything is counted, and R drops by the number of
// gallery items carrying that source (the query's own copies), so a query is
// neither rewarded for finding itself nor penalised for not finding itself.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vs {

struct RankedNeighbour {
  int label = -1;
  std::string source;
};

struct QueryResult {
  int label = -1;
  std::string label_name;
  std::string source;
  std::vector<RankedNeighbour> neighbours;  // nearest first
  int64_t relevant_in_gallery = 0;          // gallery items labelled `label`
  int64_t self_in_gallery = 0;              // gallery items whose source is `source`
};

// Means for one group of queries (all of them, or one class), aligned with
// RetrievalMetrics::ks().
struct RetrievalFigures {
  int64_t queries = 0;
  int64_t queries_with_relevant = 0;  // R > 0: the denominator of recall and mAP
  std::vector<double> precision;
  std::vector<double> recall;
  std::vector<double> map;
  std::vector<double> weighted_precision;  // overall wP@k; per class prec_c@k
  double mrr = 0.0;
  double accuracy = 0.0;
};

struct ClassFigures {
  int label = -1;
  std::string label_name;
  RetrievalFigures figures;
};

struct RetrievalSummary {
  std::vector<int> ks;
  bool exclude_self = false;
  RetrievalFigures overall;
  std::vector<ClassFigures> per_class;  // ordered by label
};

// Parses a k list such as "1,5,10": positive integers separated by commas,
// spaces allowed; returned sorted and without duplicates. Throws vs::Error.
std::vector<int> parse_k_list(const std::string& text);

class RetrievalMetrics {
 public:
  // ks must be positive; they are sorted and deduplicated.
  RetrievalMetrics(std::vector<int> ks, bool exclude_self);

  const std::vector<int>& ks() const { return ks_; }
  int max_k() const { return ks_.empty() ? 0 : ks_.back(); }
  bool exclude_self() const { return exclude_self_; }

  // Lists shorter than max_k() count their missing ranks as not relevant.
  void add(const QueryResult& query);
  int64_t queries() const { return overall_.queries; }

  RetrievalSummary summary() const;

 private:
  // Sums of the per-query figures, turned into means by summary().
  struct Accumulator {
    int64_t queries = 0;
    int64_t queries_with_relevant = 0;
    std::vector<double> precision, recall, ap;
    double reciprocal_rank = 0.0;
    double top1 = 0.0;
    std::string label_name;
  };

  void accumulate(Accumulator& acc, const std::vector<double>& precision,
                  const std::vector<double>& recall, const std::vector<double>& ap,
                  bool has_relevant, double reciprocal_rank, double top1) const;
  RetrievalFigures means(const Accumulator& acc) const;
  // prec_c@k for every k: the share of the queries whose vote@k was `label`
  // that are labelled `label`.
  std::vector<double> vote_precision(int label) const;

  struct Votes {
    int64_t cast = 0;     // queries whose vote@k is this label
    int64_t correct = 0;  // ... and that are labelled with it
  };
  std::vector<int> ks_;
  bool exclude_self_;
  Accumulator overall_;
  std::map<int, Accumulator> per_class_;
  std::vector<std::map<int, Votes>> votes_;  // per k, by voted label
};

// The name of a class in reports: its label name, or its number when it has
// none. (json/documents.h writes the summary as JSON.)
std::string class_key(const ClassFigures& c);

// A plain-text table of the summary, for a terminal.
std::string retrieval_summary_to_table(const RetrievalSummary& summary);

}  // namespace vs
