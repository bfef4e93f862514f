#pragma once
// What an asynchronous upstream call (the HTTP client's requests, the subscribe proxy's checks)
// calls back with, by request id, when, and from which threads; tests wait on it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace zena::upstream::test_support {

template <typename T>
class callbacks {
public:
    using steady = std::chrono::steady_clock;

    // The callback of request `id`; every call is recorded (a second one is a bug the tests see).
    std::function<void(T)> done(std::size_t id) {
        return [this, id](T answer) {
            // Notified under the lock: a test that sees the answer may destroy this object at
            // once, and must not do it while the notification is still on its way.
            const std::lock_guard lock(mutex_);
            answers_[id].push_back(std::move(answer));
            at_[id] = steady::now();
            threads_.insert(std::this_thread::get_id());
            changed_.notify_all();
        };
    }

    // Waits until `n` distinct requests are answered; false after `timeout`.
    bool wait(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return answers_.size() >= n; });
    }

    std::size_t answered() {
        const std::lock_guard lock(mutex_);
        return answers_.size();
    }
    std::size_t calls(std::size_t id) {
        const std::lock_guard lock(mutex_);
        const auto it = answers_.find(id);
        return it == answers_.end() ? 0 : it->second.size();
    }
    // The first answer of `id`, if any.
    std::optional<T> of(std::size_t id) {
        const std::lock_guard lock(mutex_);
        const auto it = answers_.find(id);
        if (it == answers_.end() || it->second.empty()) return std::nullopt;
        return it->second.front();
    }
    // The first answer of `id`, which must have come (std::out_of_range otherwise).
    T first(std::size_t id) {
        const std::lock_guard lock(mutex_);
        return answers_.at(id).at(0);
    }
    steady::time_point at(std::size_t id) {
        const std::lock_guard lock(mutex_);
        return at_.at(id);
    }
    std::set<std::thread::id> threads() {
        const std::lock_guard lock(mutex_);
        return threads_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::size_t, std::vector<T>> answers_;
    std::map<std::size_t, steady::time_point> at_;
    std::set<std::thread::id> threads_;
};

}  // namespace zena::upstream::test_support
