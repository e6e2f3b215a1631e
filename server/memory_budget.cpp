// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/memory_budget.h"

#include <utility>

namespace vs::server {

MemoryBudget::Share& MemoryBudget::Share::operator=(Share&& other) noexcept {
  if (this != &other) {
    reset();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void MemoryBudget::Share::reset() {
  if (budget_) budget_->give_back(bytes_);
  budget_ = nullptr;
  bytes_ = 0;
}

MemoryBudget::Share MemoryBudget::try_take(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!fits(bytes)) return Share();
  used_ += bytes;
  return Share(this, bytes);
}

MemoryBudget::Share MemoryBudget::take(uint64_t bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  freed_.wait(lock, [this, bytes] { return fits(bytes); });
  used_ += bytes;
  return Share(this, bytes);
}

void MemoryBudget::give_back(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    used_ -= bytes;
  }
  freed_.notify_all();
}

}  // namespace vs::server
