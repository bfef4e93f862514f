#pragma once
// A real thread running a queue of tasks: what hub::hub_set needs of an event loop (post a
// task; tasks run in order on that thread; a turn's broadcasts are visited when no task is
// left, hub::visit), without Asio. For the hub's unit tests and its micro
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
    void loop() {
        for (;;) {
            std::function<void()> task;
            {
                std::unique_lock lock{mutex_};
                cv_.wait(lock, [&] { return !tasks_.empty(); });
                task = std::move(tasks_.front());
                tasks_.pop_front();
            }
            if (!task) return;
            task();
            // A turn ends when nothing more is ready, and the hub of this thread visits its
            // connections with the turn's broadcasts, as net::worker does before its flush.
            bool idle = false;
            {
                std::lock_guard lock{mutex_};
                idle = tasks_.empty();
            }
            if (idle) hub::visit_pending();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    std::thread thread_;
};

}  // namespace zena::hub::testing
