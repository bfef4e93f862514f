#include "engine/memory/memory_broker.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace zena::engine {

namespace {

// The answer of a stored publish, held back while the broker's lock is held: an event-loop
// thread runs its own hub inside the hand-over, so the delivery may finish (and answer) before
// the lock is released, and an answer that published again would then wait for it forever.
struct answer_gate {
    explicit answer_gate(broker::publish_done d) : done(std::move(d)) {}
    std::mutex mutex;
    bool open = false;
    std::optional<std::vector<publish_outcome>> held;
    broker::publish_done done;

    void answer(std::vector<publish_outcome> outcomes) {
        std::unique_lock lock{mutex};
        if (!open) {
            held = std::move(outcomes);
            return;
        }
        lock.unlock();
        done(std::move(outcomes));
    }
    // The lock is released: answer now if the delivery already finished, or when it does.
    void release() {
        std::unique_lock lock{mutex};
        open = true;
        if (!held) return;
        auto outcomes = std::move(*held);
        held.reset();
        lock.unlock();
        done(std::move(outcomes));
    }
};

// `positions`: those of a stored publish, moved into the outcomes; null when nothing was stored.
std::vector<publish_outcome> outcomes_of(const std::vector<std::size_t>& delivered,
                                         std::vector<std::vector<position>>* positions) {
    std::vector<publish_outcome> outcomes(delivered.size());
    for (std::size_t i = 0; i < delivered.size(); ++i) {
        outcomes[i].delivered = delivered[i];
        if (positions) outcomes[i].positions = std::move((*positions)[i]);
    }
    return outcomes;
}

}  // namespace

void memory_broker::publish(std::shared_ptr<const std::vector<publication>> batch, publish_done done) {
    const bool stored = std::any_of(batch->begin(), batch->end(), [](const publication& p) { return p.history; });
    const bool ordered = std::any_of(batch->begin(), batch->end(), [](const publication& p) { return p.ordered; });
    if (!stored && ordered) {
        // Framed and handed over under the lock, in order across threads, like stored ones.
        auto gate = std::make_shared<answer_gate>(std::move(done));
        {
            std::lock_guard lock{order_};
            delivery_.deliver(
                routed_batch::unstored(std::move(batch)),
                [gate](const std::vector<std::size_t>& delivered) { gate->answer(outcomes_of(delivered, nullptr)); },
                true);
        }
        return gate->release();
    }
    if (!stored) {
        // No position to assign and no lock: framed per channel, straight to the hubs.
        return delivery_.deliver(routed_batch::unstored(std::move(batch)),
                                 [done = std::move(done)](const std::vector<std::size_t>& delivered) {
                                     done(outcomes_of(delivered, nullptr));
                                 });
    }

    // Refused whole, before anything is appended: past this check a memory append cannot fail,
    // so a batch is stored in every channel or in none.
    if (auto refused = unstorable(*batch)) return done(std::move(*refused));

    // The memory history answers inside the call: every position and frame is known before the
    // hand-over, and the lock keeps another publisher's appends from overtaking this batch's
    // delivery. The answer, an error or the outcomes, waits until the lock is released, so that
    // `done` may publish again.
    auto routed = std::make_shared<routed_batch>();
    routed->channels.resize(batch->size());
    routed->batch = std::move(batch);
    auto positions = std::make_shared<std::vector<std::vector<position>>>(routed->batch->size());
    auto gate = std::make_shared<answer_gate>(std::move(done));
    std::optional<util::error> failed;
    {
        std::lock_guard lock{order_};
        for (std::size_t i = 0; i < routed->batch->size() && !failed; ++i) {
            const auto& p = (*routed->batch)[i];
            if (!p.history) {
                routed->frame_unstored(i);
                continue;
            }
            for (const auto& channel : p.channels) {
                std::optional<util::result<appended>> result;
                history_.append(channel, p.event, p.limits, [&](util::result<appended> r) { result = std::move(r); });
                if (!result || !result->ok()) {
                    failed = util::error{result ? result->message() : "history did not answer"};
                    break;
                }
                (*positions)[i].push_back(result->value().at);
                routed->channels[i].push_back(std::move(result->value()));
            }
        }
        if (!failed) {
            // In order across publishing threads: another thread's stored publish, appended
            // before this one, may already be on its way to this thread's hub.
            delivery_.deliver(
                routed,
                [positions, gate](const std::vector<std::size_t>& delivered) {
                    gate->answer(outcomes_of(delivered, positions.get()));
                },
                true);
        }
    }
    if (failed) return gate->done(std::move(*failed));
    gate->release();
}

}  // namespace zena::engine
