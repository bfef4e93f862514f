#include "engine/memory/publish_memo.hpp"

#include <utility>

namespace zena::engine {

publish_memo::publish_memo(publish_memo_options options) : options_(std::move(options)) {}

std::string publish_memo::name_of(std::string_view scope, std::string_view key) {
    // A channel name holds no newline, nor does a key (visible ASCII): the pair is unambiguous.
    std::string name;
    name.reserve(scope.size() + 1 + key.size());
    name.append(scope).append(1, '\n').append(key);
    return name;
}

std::int64_t publish_memo::now() const {
    if (options_.now_ms) return options_.now_ms();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void publish_memo::sweep(std::int64_t now) {
    while (!order_.empty() && (order_.front().expires_ms <= now || records_.size() > options_.max_keys)) {
        const auto& oldest = order_.front();
        const auto it = records_.find(oldest.name);
        if (it != records_.end() && it->second.serial == oldest.serial) {
            if (oldest.expires_ms > now) ++evicted_;
            records_.erase(it);
        }
        order_.pop_front();
    }
}

std::optional<publish_memo::first> publish_memo::claim(std::string_view scope, std::string_view key,
                                                       std::uint64_t* serial_out) {
    auto name = name_of(scope, key);
    const auto t = now();
    const std::lock_guard lock{mutex_};
    sweep(t);
    if (const auto it = records_.find(name); it != records_.end()) return first{it->second.at};
    const auto serial = next_serial_++;
    if (serial_out) *serial_out = serial;
    records_.emplace(name, record{.at = std::nullopt, .serial = serial});
    order_.push_back(claimed{.expires_ms = t + options_.window.count(), .name = std::move(name), .serial = serial});
    sweep(t);  // past max_keys, the oldest goes
    return std::nullopt;
}

void publish_memo::settle(std::string_view scope, std::string_view key, std::uint64_t serial, position at) {
    const std::lock_guard lock{mutex_};
    const auto it = records_.find(name_of(scope, key));
    if (it != records_.end() && it->second.serial == serial) it->second.at = std::move(at);
}

void publish_memo::forget(std::string_view scope, std::string_view key, std::uint64_t serial) {
    const std::lock_guard lock{mutex_};
    const auto it = records_.find(name_of(scope, key));
    if (it != records_.end() && it->second.serial == serial) records_.erase(it);  // its order_ entry is skipped
}

std::size_t publish_memo::size() const {
    const std::lock_guard lock{mutex_};
    return records_.size();
}

std::uint64_t publish_memo::evicted() const {
    const std::lock_guard lock{mutex_};
    return evicted_;
}

}  // namespace zena::engine
