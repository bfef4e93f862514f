#pragma once
// The broker of one process (engine.type = memory, the default): this node's hubs are every
// connection there is, so a publish goes straight to them (engine::local_delivery), and
// interest needs no routing. Stored publications are appended to the memory history and posted
// to the hubs under one lock, so that each channel's seq order is the order its connections
// receive; publications without history take no lock at all. A batch with a stored publication
// that cannot be stored (an ephemeral event) is refused whole, before anything is appended; the
// answer of a stored publish is given once the lock is released, so `done` may publish again.
//
// Publications marked `ordered` (not stored) take the same lock and in-order hand-over.
//
// A publication with an idempotency key is first checked against the publish memo, channel by
// channel: the channels where the key was published within the window are skipped (answered as
// duplicates, with the first publish's position), and the rest is published as above.
//
// Threading: any thread (see engine::broker).

#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/broker.hpp"
#include "engine/local_delivery.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/publish_memo.hpp"

namespace zena::engine {

class memory_broker final : public broker {
public:
    memory_broker(hub::hub_set& hubs, memory_history& history, publish_memo_options memo = {})
        : delivery_(hubs), history_(history), memo_(std::make_shared<publish_memo>(std::move(memo))) {}

    void publish(std::shared_ptr<const std::vector<publication>> batch, publish_done done) override;
    void subscribe(std::string_view) override {}
    void unsubscribe(std::string_view) override {}

    const publish_memo& memo() const { return *memo_; }

private:
    // `batch` with no channel already published under its key. `lock` is on order_, held or not
    // (taken here when needed); it is released before `done` can run.
    void publish_fresh(std::shared_ptr<const std::vector<publication>> batch, publish_done done,
                       std::unique_lock<std::mutex>& lock);

    local_delivery delivery_;
    memory_history& history_;
    std::shared_ptr<publish_memo> memo_;  // shared with answers that may come after this broker is gone
    std::mutex order_;                    // held from a stored publication's append to its hand-over to the hubs
};

}  // namespace zena::engine
