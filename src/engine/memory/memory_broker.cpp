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
    const auto keyed = [](const publication& p) { return !p.idempotency_key.empty(); };
    std::unique_lock lock{order_, std::defer_lock};
    if (std::none_of(batch->begin(), batch->end(), keyed)) {
        return publish_fresh(std::move(batch), std::move(done), lock);
    }
    // Refused whole before a key is claimed: a refused publish may be retried as it is.
    if (auto refused = unstorable(*batch)) return done(std::move(*refused));
    // The keys are claimed under the lock that orders stored publishes, and held until this
    // batch is handed over: a retry answered as a duplicate meanwhile cannot be followed by a
    // publish of its own that overtakes the first.
    lock.lock();

    // Each keyed publication loses the channels where its key was published; what is left of
    // the batch is published as a batch without keys would be.
    struct plan {
        std::shared_ptr<const std::vector<publication>> batch;
        std::vector<publish_outcome> outcomes;             // the skipped channels filled in
        std::vector<std::optional<std::size_t>> fresh_at;  // per publication: its place in `fresh`
        std::vector<std::vector<std::uint64_t>> claims;    // per publication and target: its claim (0: none)
    };
    auto fresh = std::make_shared<std::vector<publication>>();
    auto step = std::make_shared<plan>();
    step->outcomes.resize(batch->size());
    step->fresh_at.resize(batch->size());
    step->claims.resize(batch->size());
    for (std::size_t i = 0; i < batch->size(); ++i) {
        const auto& p = (*batch)[i];
        auto& outcome = step->outcomes[i];
        if (!keyed(p)) {
            step->fresh_at[i] = fresh->size();
            fresh->push_back(p);
            continue;
        }
        if (p.everyone) {
            auto& serial = step->claims[i].emplace_back();
            const bool skipped = memo_->claim(k_everyone_scope, p.idempotency_key, &serial).has_value();
            outcome.duplicate.push_back(skipped);
            if (!skipped) {
                step->fresh_at[i] = fresh->size();
                fresh->push_back(p);
            }
            continue;
        }
        publication rest = p;
        rest.channels.clear();
        if (p.history) outcome.positions.resize(p.channels.size());
        for (std::size_t c = 0; c < p.channels.size(); ++c) {
            const auto first = memo_->claim(p.channels[c], p.idempotency_key, &step->claims[i].emplace_back());
            outcome.duplicate.push_back(first.has_value());
            if (!first) {
                rest.channels.push_back(p.channels[c]);
            } else if (p.history && first->at) {
                outcome.positions[c] = *first->at;
            }
        }
        if (!rest.channels.empty()) {
            step->fresh_at[i] = fresh->size();
            fresh->push_back(std::move(rest));
        }
    }
    step->batch = std::move(batch);
    if (fresh->empty()) {
        lock.unlock();
        return done(std::move(step->outcomes));
    }
    publish_fresh(
        std::move(fresh),
        [memo = memo_, step, keyed, done = std::move(done)](util::result<std::vector<publish_outcome>> r) {
            for (std::size_t i = 0; i < step->batch->size(); ++i) {
                const auto& p = (*step->batch)[i];
                if (!step->fresh_at[i] || !keyed(p)) continue;
                // The claims of the channels published: settled with their positions, or forgotten
                // with a failure so that a retry publishes.
                const auto* published = r.ok() ? &(*r)[*step->fresh_at[i]] : nullptr;
                if (p.everyone) {
                    if (!published) memo->forget(k_everyone_scope, p.idempotency_key, step->claims[i][0]);
                    continue;
                }
                std::size_t next = 0;  // in the published publication's channels
                for (std::size_t c = 0; c < p.channels.size(); ++c) {
                    if (step->outcomes[i].duplicate[c]) continue;
                    if (!published) {
                        memo->forget(p.channels[c], p.idempotency_key, step->claims[i][c]);
                    } else if (p.history && next < published->positions.size()) {
                        memo->settle(p.channels[c], p.idempotency_key, step->claims[i][c], published->positions[next]);
                        step->outcomes[i].positions[c] = published->positions[next];
                    }
                    ++next;
                }
            }
            if (!r) return done(std::move(r));
            for (std::size_t i = 0; i < step->batch->size(); ++i) {
                if (!step->fresh_at[i]) continue;
                auto& published = (*r)[*step->fresh_at[i]];
                auto& outcome = step->outcomes[i];
                outcome.delivered = published.delivered;
                if (!keyed((*step->batch)[i])) outcome = std::move(published);
            }
            done(std::move(step->outcomes));
        },
        lock);
}

void memory_broker::publish_fresh(std::shared_ptr<const std::vector<publication>> batch, publish_done done,
                                  std::unique_lock<std::mutex>& lock) {
    const bool stored = std::any_of(batch->begin(), batch->end(), [](const publication& p) { return p.history; });
    const bool ordered = std::any_of(batch->begin(), batch->end(), [](const publication& p) { return p.ordered; });
    if (!stored && ordered) {
        // Framed and handed over under the lock, in order across threads, like stored ones.
        auto gate = std::make_shared<answer_gate>(std::move(done));
        if (!lock.owns_lock()) lock.lock();
        delivery_.deliver(
            routed_batch::unstored(std::move(batch)),
            [gate](const std::vector<std::size_t>& delivered) { gate->answer(outcomes_of(delivered, nullptr)); }, true);
        lock.unlock();
        return gate->release();
    }
    if (!stored) {
        // No position to assign and no lock: framed per channel, straight to the hubs.
        if (lock.owns_lock()) lock.unlock();
        return delivery_.deliver(routed_batch::unstored(std::move(batch)),
                                 [done = std::move(done)](const std::vector<std::size_t>& delivered) {
                                     done(outcomes_of(delivered, nullptr));
                                 });
    }

    // Refused whole, before anything is appended: past this check a memory append cannot fail,
    // so a batch is stored in every channel or in none.
    if (auto refused = unstorable(*batch)) {
        if (lock.owns_lock()) lock.unlock();
        return done(std::move(*refused));
    }

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
        if (!lock.owns_lock()) lock.lock();
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
        lock.unlock();
    }
    if (failed) return gate->done(std::move(*failed));
    gate->release();
}

}  // namespace zena::engine
