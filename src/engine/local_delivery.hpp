#pragma once
// The last step of every publish, whatever the broker: the publications reach this node's hubs,
// one task per event-loop thread for the whole batch (never one per connection or per channel),
// and the connections each one reached are summed.
//
// Threading: deliver() may be called from any thread; `done` runs once, on the thread whose hub
// finished last (on an event-loop thread, that thread's own hub runs inside the call). Batches
// delivered one after the other from one thread reach each connection in that order.

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "engine/broker.hpp"
#include "hub/hub_set.hpp"

namespace zena::engine {

// A batch as it goes to the hubs: per publication and per channel of it (in their order), the
// frame built for that channel and its position there (an empty epoch: not stored).
struct routed_batch {
    std::shared_ptr<const std::vector<publication>> batch;
    std::vector<std::vector<appended>> channels;

    // `batch` with every channel's frame built without a position (nothing stored).
    static std::shared_ptr<routed_batch> unstored(std::shared_ptr<const std::vector<publication>> batch);
    // Publication `i`'s channels framed without a position.
    void frame_unstored(std::size_t i);
};

class local_delivery {
public:
    explicit local_delivery(hub::hub_set& hubs) : hubs_(hubs) {}

    // `done` gets, per publication, the connections it was queued to on this node. `ordered`:
    // batches delivered from several threads, one after the other (under the caller's lock),
    // reach each connection in that order (hub_set::on_every_hub_in_order).
    void deliver(const std::shared_ptr<const routed_batch>& routed, std::function<void(std::vector<std::size_t>)> done,
                 bool ordered = false);

private:
    hub::hub_set& hubs_;
};

}  // namespace zena::engine
