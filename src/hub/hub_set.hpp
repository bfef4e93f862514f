#pragma once
// The hubs of every event-loop thread, and the one way work crosses between them.
//
// Threading: constructed before the threads start; `local(i)` is used only on thread i.
// `on_every_hub` may be called from any thread: it posts one task per other thread (never one
// per connection), each task runs on its hub's thread, and `done` runs once, on the thread that
// finished last. On an event-loop thread (one that called enter(i)), that thread's own hub runs
// at once, inside the call: no hop through its queue. Tasks posted from one thread run on each
// target thread in the order they were posted, and a thread's own hub runs in call order, which
// is what keeps one publisher's events in order.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "hub/hub.hpp"
#include "hub/user_registry.hpp"

namespace zena::hub {

class hub_set {
public:
    using task = std::function<void()>;
    using post_fn = std::function<void(task)>;  // runs a task on one thread's event loop

    hub_set(std::vector<post_fn> posts, user_registry& registry);

    std::size_t size() const { return hubs_.size(); }
    hub& local(std::size_t thread) { return *hubs_[thread]; }
    user_registry& registry() { return registry_; }

    // Marks the calling thread as event-loop thread `thread` (for the rest of its life).
    static void enter(std::size_t thread);

    // Runs `fn` on every hub, each on its own thread; `done` gets the sum of what they returned.
    // `fn` is shared by all threads, so it must only read what it captured.
    void on_every_hub(std::function<std::size_t(hub&)> fn, std::function<void(std::size_t)> done);

    // The same, for work whose order across calling threads matters (a channel's stored events,
    // appended under one lock): the calls reach every hub in the order they were made, whichever
    // threads made them, the caller's own hub included (it is not run inside the call). An
    // event loop's own posts may overtake posts from other threads (Asio keeps a thread's own
    // posts apart until its handler returns), so these go through a FIFO of each hub's own,
    // which one posted task drains.
    void on_every_hub_in_order(std::function<std::size_t(hub&)> fn, std::function<void(std::size_t)> done);

private:
    struct fifo {
        std::mutex mutex;
        std::deque<task> tasks;
        bool draining = false;  // a drain task is posted and has not taken the tasks yet
    };
    void post_in_order(std::size_t thread, task t);
    void drain(std::size_t thread);

    std::vector<post_fn> posts_;
    std::vector<std::unique_ptr<hub>> hubs_;
    std::vector<std::unique_ptr<fifo>> fifos_;  // one per hub
    user_registry& registry_;
};

}  // namespace zena::hub
