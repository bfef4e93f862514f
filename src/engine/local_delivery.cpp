#include "engine/local_delivery.hpp"

#include <atomic>

namespace zena::engine {
namespace {

// Publication `i` on one thread's hub; the connections it reached there.
std::size_t deliver_one(hub::hub& h, const routed_batch& routed, std::size_t i) {
    const auto& p = (*routed.batch)[i];
    if (p.everyone) return h.send_to_all(p.event->message);
    const auto& framed = routed.channels[i];
    const hub::hub::exclusion except{p.except_user, p.except_connection};
    std::size_t delivered = 0;
    for (std::size_t c = 0; c < p.channels.size(); ++c) {
        delivered += h.send_to_channel(p.channels[c], framed[c].message, framed[c].at.epoch, framed[c].at.seq, except);
    }
    return delivered;
}

}  // namespace

std::shared_ptr<routed_batch> routed_batch::unstored(std::shared_ptr<const std::vector<publication>> batch) {
    auto routed = std::make_shared<routed_batch>();
    routed->channels.resize(batch->size());
    routed->batch = std::move(batch);
    for (std::size_t i = 0; i < routed->batch->size(); ++i) routed->frame_unstored(i);
    return routed;
}

void routed_batch::frame_unstored(std::size_t i) {
    const auto& p = (*batch)[i];
    auto& framed = channels[i];
    framed.clear();
    framed.reserve(p.channels.size());
    for (const auto& channel : p.channels) framed.push_back(appended{{}, channel_message(*p.event, channel, {})});
}

void local_delivery::deliver(const std::shared_ptr<const routed_batch>& routed,
                             std::function<void(std::vector<std::size_t>)> done, bool ordered) {
    const auto size = routed->batch->size();
    const auto every_hub = [this, ordered](std::function<std::size_t(hub::hub&)> fn,
                                           std::function<void(std::size_t)> then) {
        if (ordered) return hubs_.on_every_hub_in_order(std::move(fn), std::move(then));
        hubs_.on_every_hub(std::move(fn), std::move(then));
    };
    if (size == 1) {
        // The common case, a single publication, needs no per-item counters.
        every_hub([routed](hub::hub& h) { return deliver_one(h, *routed, 0); },
                  [done = std::move(done)](std::size_t total) { done({total}); });
        return;
    }
    auto counts = std::make_shared<std::vector<std::atomic<std::size_t>>>(size);
    every_hub(
        [routed, counts](hub::hub& h) {
            std::size_t total = 0;
            for (std::size_t i = 0; i < routed->batch->size(); ++i) {
                const auto n = deliver_one(h, *routed, i);
                (*counts)[i].fetch_add(n, std::memory_order_relaxed);
                total += n;
            }
            return total;
        },
        [counts, done = std::move(done)](std::size_t) {
            std::vector<std::size_t> delivered;
            delivered.reserve(counts->size());
            for (const auto& c : *counts) delivered.push_back(c.load(std::memory_order_relaxed));
            done(std::move(delivered));
        });
}

}  // namespace zena::engine
