#pragma once
// A real thread running a queue of tasks: what hub::hub_set needs of an event loop (post a
// task; tasks run in order on that thread; a turn's broadcasts are visited after the tasks that
// were ready, hub::visit), without Asio. For the hub's unit tests and its micro
// benchmark (bench/hub_bench.cpp).

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "hub/hub.hpp"

namespace zena::hub::testing {

// A real thread per hub running a task queue: the same contract as an io_context.
class task_thread {
public:
    task_thread() : thread_([this] { loop(); }) {}
    ~task_thread() {
        post({});
        thread_.join();
    }
    void post(std::function<void()> task) {
        std::lock_guard lock{mutex_};
        tasks_.push_back(std::move(task));
        cv_.notify_one();
    }

private:
    // A turn runs the tasks that are ready (those queued when it starts), then the hub of this
    // thread visits its connections with the turn's broadcasts (hub::visit), as net::worker
    // does before its flush. A task posted during the turn runs in the next one, after that
    // visit: a test that waits for a task it posted sees the visits of the turns before it.
    void loop() {
        // The turn's tasks, swapped out of the queue; one deque kept from turn to turn (a new
        // one allocates its map each time).
        std::deque<std::function<void()>> turn;
        for (;;) {
            {
                std::unique_lock lock{mutex_};
                cv_.wait(lock, [&] { return !tasks_.empty(); });
                turn.swap(tasks_);
            }
            for (auto& task : turn) {
                if (!task) return;
                task();
            }
            turn.clear();
            hub::visit_pending();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    std::thread thread_;
};

}  // namespace zena::hub::testing
