#include "hub/hub.hpp"

#include <algorithm>
#include <cassert>

namespace zena::hub {

void hub::add(std::shared_ptr<connection> conn) {
    assert(conn && !index_.contains(conn->id()));
    registry_.add(conn->user_id());
    by_user_[conn->user_id()].push_back(conn.get());
    index_.emplace(conn->id(), slot{all_.size()});
    all_.push_back(std::move(conn));
}

void hub::remove(connection_id id) {
    const auto it = index_.find(id);
    if (it == index_.end()) return;
    const std::size_t pos = it->second.pos;
    if (it->second.deadline != k_no_deadline) --deadlines_;  // its heap entry is now stale
    connection* conn = all_[pos].get();

    auto user_it = by_user_.find(conn->user_id());
    assert(user_it != by_user_.end());
    auto& list = user_it->second;
    list.erase(std::find(list.begin(), list.end(), conn));
    if (list.empty()) by_user_.erase(user_it);
    registry_.remove(conn->user_id());

    // Swap-remove keeps the array dense.
    index_.erase(it);
    if (pos + 1 != all_.size()) {
        all_[pos] = std::move(all_.back());
        index_[all_[pos]->id()].pos = pos;
    }
    all_.pop_back();
}

std::size_t hub::send_to_user(std::string_view user, const protocol::outbound& message) {
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    std::size_t delivered = 0;
    for (connection* conn : it->second) delivered += conn->send(message) ? 1 : 0;
    return delivered;
}

std::size_t hub::send_to_all(const protocol::outbound& message) {
    std::size_t delivered = 0;
    for (const auto& conn : all_) delivered += conn->send(message) ? 1 : 0;
    return delivered;
}

std::size_t hub::close_user(std::string_view user, protocol::close_code code, std::string_view reason) {
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    const auto targets = it->second;
    for (connection* conn : targets) conn->close(code, reason);
    return targets.size();
}

std::size_t hub::close_all(protocol::close_code code, std::string_view reason) {
    const auto targets = snapshot();
    for (const auto& conn : targets) conn->close(code, reason);
    return targets.size();
}

std::size_t hub::heartbeat() {
    std::size_t terminated = 0;
    for (const auto& conn : snapshot()) terminated += conn->heartbeat() ? 0 : 1;
    return terminated;
}

namespace {

// Orders the heap soonest first.
constexpr auto later = [](const auto& a, const auto& b) { return a.at > b.at; };

}  // namespace

void hub::set_expiry(connection_id id, std::int64_t at_s) {
    const auto it = index_.find(id);
    if (it == index_.end()) return;
    if (it->second.deadline == k_no_deadline) ++deadlines_;
    it->second.deadline = at_s;
    expiries_.push_back({at_s, id});
    std::push_heap(expiries_.begin(), expiries_.end(), later);
    compact_expiries();
}

void hub::compact_expiries() {
    if (expiries_.size() <= 2 * deadlines_ + 64) return;
    expiries_.clear();
    for (const auto& [id, s] : index_) {
        if (s.deadline != k_no_deadline) expiries_.push_back({s.deadline, id});
    }
    std::make_heap(expiries_.begin(), expiries_.end(), later);
}

std::size_t hub::expire(std::int64_t now_s) {
    std::size_t closed = 0;
    while (!expiries_.empty() && expiries_.front().at <= now_s) {
        const auto due = expiries_.front();
        std::pop_heap(expiries_.begin(), expiries_.end(), later);
        expiries_.pop_back();
        const auto it = index_.find(due.id);
        if (it == index_.end() || it->second.deadline != due.at) continue;  // gone, or moved
        it->second.deadline = k_no_deadline;
        --deadlines_;
        all_[it->second.pos]->close(protocol::close_code::policy_violation, "token expired");
        ++closed;
    }
    return closed;
}

std::size_t hub::user_connections(std::string_view user) const {
    const auto it = by_user_.find(user);
    return it == by_user_.end() ? 0 : it->second.size();
}

}  // namespace zena::hub
