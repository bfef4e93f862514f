#include "hub/hub_set.hpp"

#include <atomic>

namespace zena::hub {

namespace {

constexpr std::size_t k_no_thread = static_cast<std::size_t>(-1);
thread_local std::size_t current_thread = k_no_thread;

}  // namespace

void hub_set::enter(std::size_t thread) { current_thread = thread; }

hub_set::hub_set(std::vector<post_fn> posts, user_registry& registry) : posts_(std::move(posts)), registry_(registry) {
    hubs_.reserve(posts_.size());
    for (std::size_t i = 0; i < posts_.size(); ++i) {
        hubs_.push_back(std::make_unique<hub>(registry_));
        fifos_.push_back(std::make_unique<fifo>());
    }
}

void hub_set::post_in_order(std::size_t thread, task t) {
    auto& f = *fifos_[thread];
    {
        std::lock_guard lock{f.mutex};
        f.tasks.push_back(std::move(t));
        if (f.draining) return;
        f.draining = true;
    }
    posts_[thread]([this, thread] { drain(thread); });
}

void hub_set::drain(std::size_t thread) {
    auto& f = *fifos_[thread];
    std::deque<task> tasks;
    {
        std::lock_guard lock{f.mutex};
        tasks.swap(f.tasks);
        f.draining = false;
    }
    // A task pushed from here on posts a new drain, which runs after this one: the order holds.
    for (auto& t : tasks) t();
}

void hub_set::on_every_hub_in_order(std::function<std::size_t(hub&)> fn, std::function<void(std::size_t)> done) {
    struct gather {
        std::function<std::size_t(hub&)> fn;
        std::function<void(std::size_t)> done;
        std::atomic<std::size_t> total{0};
        std::atomic<std::size_t> remaining;
    };
    auto state = std::make_shared<gather>();
    state->fn = std::move(fn);
    state->done = std::move(done);
    state->remaining.store(hubs_.size(), std::memory_order_relaxed);
    for (std::size_t i = 0; i < hubs_.size(); ++i) {
        post_in_order(i, [state, h = hubs_[i].get()] {
            state->total.fetch_add(state->fn(*h), std::memory_order_relaxed);
            if (state->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && state->done) {
                state->done(state->total.load(std::memory_order_relaxed));
            }
        });
    }
}

void hub_set::on_every_hub(std::function<std::size_t(hub&)> fn, std::function<void(std::size_t)> done) {
    struct gather {
        std::function<std::size_t(hub&)> fn;
        std::function<void(std::size_t)> done;
        std::atomic<std::size_t> total{0};
        std::atomic<std::size_t> remaining;
    };
    auto state = std::make_shared<gather>();
    state->fn = std::move(fn);
    state->done = std::move(done);
    state->remaining.store(hubs_.size(), std::memory_order_relaxed);
    const auto run = [](const std::shared_ptr<gather>& g, hub& h) {
        g->total.fetch_add(g->fn(h), std::memory_order_relaxed);
        // acq_rel: the last thread sees every other thread's addition.
        if (g->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && g->done) {
            g->done(g->total.load(std::memory_order_relaxed));
        }
    };
    const auto here = current_thread < hubs_.size() ? current_thread : k_no_thread;
    for (std::size_t i = 0; i < hubs_.size(); ++i) {
        if (i != here) posts_[i]([state, run, h = hubs_[i].get()] { run(state, *h); });
    }
    // The others are on their way; this thread's hub runs now.
    if (here != k_no_thread) run(state, *hubs_[here]);
}

}  // namespace zena::hub
