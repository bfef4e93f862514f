#include "engine/local_delivery.hpp"

#include <atomic>

namespace zena::engine {
namespace {

// One publication on one thread's hub; the connections it reached there.
std::size_t deliver_one(hub::hub& h, const publication& p) {
    const auto& message = p.event->message;
    if (p.everyone) return h.send_to_all(message);
    std::size_t delivered = 0;
    for (const auto& channel : p.channels) delivered += h.send_to_channel(channel, message);
    return delivered;
}

}  // namespace

void local_delivery::deliver(const std::shared_ptr<const std::vector<publication>>& batch,
                             std::function<void(std::vector<std::size_t>)> done) {
    if (batch->size() == 1) {
        // The common case, a single publication, needs no per-item counters.
        hubs_.on_every_hub([batch](hub::hub& h) { return deliver_one(h, batch->front()); },
                           [done = std::move(done)](std::size_t total) { done({total}); });
        return;
    }
    auto counts = std::make_shared<std::vector<std::atomic<std::size_t>>>(batch->size());
    hubs_.on_every_hub(
        [batch, counts](hub::hub& h) {
            std::size_t total = 0;
            for (std::size_t i = 0; i < batch->size(); ++i) {
                const auto n = deliver_one(h, (*batch)[i]);
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
