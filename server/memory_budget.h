/* SPDX-License-Identifier: LGPL-2.1-or-later */
// A number of bytes that pieces of work may hold at once: uploads and decoded
// queries waiting for the embedder, or pictures being decoded. A request is
// refused (503) or made to wait when its share does not fit, so that the
// server's memory stays bounded however many clients send large pictures.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace vs::server {

class MemoryBudget {
 public:
  // A part of the budget, given back when the share is destroyed or reset.
  class Share {
   public:
    Share() = default;
    Share(Share&& other) noexcept { *this = std::move(other); }
    Share& operator=(Share&& other) noexcept;
    Share(const Share&) = delete;
    Share& operator=(const Share&) = delete;
    ~Share() { reset(); }

    void reset();
    bool held() const { return budget_ != nullptr; }

   private:
    friend class MemoryBudget;
    Share(MemoryBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    MemoryBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // A share of bytes if it fits now; one that is not held() otherwise. A
  // share larger than the whole budget fits when nothing else is held.
  Share try_take(uint64_t bytes);

  // A share of bytes, once it fits.
  Share take(uint64_t bytes);

  uint64_t limit() const { return limit_; }

 private:
  bool fits(uint64_t bytes) const {
    return used_ == 0 || (used_ <= limit_ && bytes <= limit_ - used_);
  }
  void give_back(uint64_t bytes);

  const uint64_t limit_;
  std::mutex mutex_;
  std::condition_variable freed_;
  uint64_t used_ = 0;
};

}  // namespace vs::server
