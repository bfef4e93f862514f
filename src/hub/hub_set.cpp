#include "hub/hub_set.hpp"

#include <atomic>

namespace zena::hub {

hub_set::hub_set(std::vector<post_fn> posts, user_registry& registry) : posts_(std::move(posts)), registry_(registry) {
    hubs_.reserve(posts_.size());
    for (std::size_t i = 0; i < posts_.size(); ++i) hubs_.push_back(std::make_unique<hub>(registry_));
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
    for (std::size_t i = 0; i < hubs_.size(); ++i) {
        posts_[i]([state, h = hubs_[i].get()] {
            state->total.fetch_add(state->fn(*h), std::memory_order_relaxed);
            // acq_rel: the last thread sees every other thread's addition.
            if (state->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && state->done) {
                state->done(state->total.load(std::memory_order_relaxed));
            }
        });
    }
}

}  // namespace zena::hub
