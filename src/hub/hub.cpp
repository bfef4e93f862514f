#include "hub/hub.hpp"

#include <algorithm>
#include <cassert>

#include "protocol/channel.hpp"

namespace zena::hub {

void hub::add(std::shared_ptr<connection> conn) {
    visit();
    assert(conn && conn->hub_pos_ == connection::k_nowhere);
    registry_.add(conn->user_id());
    by_user_[conn->user_id()].push_back(conn.get());
    conn->hub_pos_ = static_cast<std::uint32_t>(all_.size());
    all_.push_back(std::move(conn));
}

void hub::remove(connection& conn) {
    visit();
    if (!holds(conn)) return;
    drop_deadline(conn);
    auto user_it = by_user_.find(conn.user_id());
    assert(user_it != by_user_.end());
    auto& list = user_it->second;
    list.erase(std::find(list.begin(), list.end(), &conn));
    if (list.empty()) by_user_.erase(user_it);
    registry_.remove(conn.user_id());

    // Swap-remove keeps the array dense. The last reference may be the array's: keep the
    // connection alive until its bookkeeping is done.
    const std::size_t pos = conn.hub_pos_;
    conn.hub_pos_ = connection::k_nowhere;
    auto held = std::move(all_[pos]);
    if (pos + 1 != all_.size()) {
        all_[pos] = std::move(all_.back());
        all_[pos]->hub_pos_ = static_cast<std::uint32_t>(pos);
    }
    all_.pop_back();
}

std::size_t hub::send_to_user(std::string_view user, const ws::outbound& message) {
    visit();
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    std::size_t delivered = 0;
    for (connection* conn : it->second) delivered += conn->send(message) ? 1 : 0;
    return counted(delivered);
}

std::size_t hub::send_to_channel(std::string_view channel, const ws::outbound& message, std::string_view epoch,
                                 std::uint64_t seq, const exclusion& except) {
    if (except.empty()) return send_to_channel(channel, message, epoch, seq);
    visit();
    std::size_t delivered = 0;
    if (const auto user = protocol::personal_channel_user(channel)) {
        const auto it = by_user_.find(*user);
        if (it == by_user_.end()) return 0;
        for (connection* conn : it->second) {
            if (!except.excludes(*conn)) delivered += offer(*conn, conn->personal(), message, epoch, seq) ? 1 : 0;
        }
        return counted(delivered);
    }
    const auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) return 0;
    for (const auto& h : it->second) {
        if (!except.excludes(*h.conn)) delivered += offer(*h.conn, *h.sub, message, epoch, seq) ? 1 : 0;
    }
    return counted(delivered);
}

std::size_t hub::send_to_channel(std::string_view channel, const ws::outbound& message, std::string_view epoch,
                                 std::uint64_t seq) {
    visit();
    std::size_t delivered = 0;
    if (const auto user = protocol::personal_channel_user(channel)) {
        const auto it = by_user_.find(*user);
        if (it == by_user_.end()) return 0;
        for (connection* conn : it->second) delivered += offer(*conn, conn->personal(), message, epoch, seq) ? 1 : 0;
        return counted(delivered);
    }
    const auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) return 0;
    // A holder never leaves inside send (connections only queue work), so the list is stable.
    for (const auto& h : it->second) delivered += offer(*h.conn, *h.sub, message, epoch, seq) ? 1 : 0;
    return counted(delivered);
}

bool hub::subscribe(connection& conn, std::string_view channel, subscription& sub) {
    assert(holds(conn));
    if (sub.pos != subscription::k_nowhere) return false;
    auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) {
        it = by_channel_.emplace(std::string{channel}, std::vector<holder>{}).first;
        registry_.add_channel(channel);
    }
    sub.pos = static_cast<std::uint32_t>(it->second.size());
    it->second.push_back(holder{&conn, &sub});
    return true;
}

bool hub::unsubscribe(std::string_view channel, subscription& sub) {
    if (sub.pos == subscription::k_nowhere) return false;
    const auto it = by_channel_.find(channel);
    assert(it != by_channel_.end() && sub.pos < it->second.size() && it->second[sub.pos].sub == &sub);
    if (it == by_channel_.end()) return false;
    auto& list = it->second;
    const auto pos = sub.pos;
    sub.pos = subscription::k_nowhere;
    if (pos + 1 != list.size()) {
        list[pos] = list.back();
        list[pos].sub->pos = pos;
    }
    list.pop_back();
    if (list.empty()) {
        by_channel_.erase(it);
        registry_.remove_channel(channel);
    }
    return true;
}

std::size_t hub::channel_holders(std::string_view channel) const {
    const auto it = by_channel_.find(channel);
    return it == by_channel_.end() ? 0 : it->second.size();
}

std::size_t hub::subscribe_user(std::string_view user, std::string_view channel) {
    visit();
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    const auto targets = it->second;  // a subscribe may not change by_user_, but stay safe
    std::size_t taken = 0;
    for (connection* conn : targets) taken += conn->subscribe_by_server(channel) ? 1 : 0;
    return taken;
}

std::size_t hub::unsubscribe_user(std::string_view user, std::string_view channel) {
    visit();
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    const auto targets = it->second;
    std::size_t left = 0;
    for (connection* conn : targets) left += conn->unsubscribe_by_server(channel) ? 1 : 0;
    return left;
}

hub::~hub() {
    // Broadcasts never visited (the loop stopped first) reach no one.
    if (pending_here_ == this) pending_here_ = nullptr;
}

std::size_t hub::send_to_all(const ws::outbound& message) {
    if (all_.empty()) return 0;
    // One hub per event-loop thread; a thread with several (tests) visits the other first.
    if (pending_here_ != nullptr && pending_here_ != this) pending_here_->visit();
    deferred_.push_back(message);
    pending_here_ = this;
    return all_.size();
}

void hub::visit() {
    if (deferred_.empty()) return;
    pending_here_ = nullptr;  // the sends below find nothing waiting
    assert(visiting_.empty() && "a visit never starts inside another: sends only queue work");
    std::swap(visiting_, deferred_);
    // A connection never leaves inside send (connections only queue work), so all_ is stable.
    std::size_t taken = 0;
    for (const auto& conn : all_) {
        for (const auto& message : visiting_) taken += conn->send(message) ? 1 : 0;
    }
    counted(taken);
    visiting_.clear();
}

std::size_t hub::close_user(std::string_view user, ws::close_code code, std::string_view reason) {
    visit();
    const auto it = by_user_.find(user);
    if (it == by_user_.end()) return 0;
    const auto targets = it->second;
    for (connection* conn : targets) conn->close(code, reason);
    return targets.size();
}

std::size_t hub::close_all(ws::close_code code, std::string_view reason) {
    visit();
    const auto targets = snapshot();
    for (const auto& conn : targets) conn->close(code, reason);
    return targets.size();
}

std::size_t hub::heartbeat() {
    visit();
    std::size_t terminated = 0;
    for (const auto& conn : snapshot()) terminated += conn->heartbeat() ? 0 : 1;
    return terminated;
}

void hub::place(std::size_t i, deadline d) {
    d.conn->deadline_pos_ = static_cast<std::uint32_t>(i);
    deadlines_[i] = d;
}

void hub::sift_up(std::size_t i) {
    const auto d = deadlines_[i];
    while (i > 0) {
        const auto parent = (i - 1) / 2;
        if (deadlines_[parent].at <= d.at) break;
        place(i, deadlines_[parent]);
        i = parent;
    }
    place(i, d);
}

void hub::sift_down(std::size_t i) {
    const auto d = deadlines_[i];
    const auto n = deadlines_.size();
    for (;;) {
        auto child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && deadlines_[child + 1].at < deadlines_[child].at) ++child;
        if (deadlines_[child].at >= d.at) break;
        place(i, deadlines_[child]);
        i = child;
    }
    place(i, d);
}

void hub::drop_deadline(connection& conn) {
    const auto i = conn.deadline_pos_;
    if (i == connection::k_nowhere) return;
    conn.deadline_pos_ = connection::k_nowhere;
    const auto last = deadlines_.back();
    deadlines_.pop_back();
    if (i == deadlines_.size()) return;  // it was the last entry
    place(i, last);
    reorder(i);
}

void hub::reorder(std::size_t i) {
    const connection* conn = deadlines_[i].conn;
    sift_up(i);
    sift_down(conn->deadline_pos_);
}

void hub::set_expiry(connection& conn, std::int64_t at_s) {
    if (!holds(conn)) return;
    if (conn.deadline_pos_ == connection::k_nowhere) {
        deadlines_.push_back({at_s, &conn});
        sift_up(deadlines_.size() - 1);
        return;
    }
    deadlines_[conn.deadline_pos_].at = at_s;
    reorder(conn.deadline_pos_);
}

std::size_t hub::expire(std::int64_t now_s) {
    visit();
    std::size_t closed = 0;
    while (!deadlines_.empty() && deadlines_.front().at <= now_s) {
        connection& conn = *deadlines_.front().conn;
        drop_deadline(conn);
        conn.close(ws::close_code::policy_violation, "token expired");
        ++closed;
    }
    return closed;
}

std::size_t hub::user_connections(std::string_view user) const {
    const auto it = by_user_.find(user);
    return it == by_user_.end() ? 0 : it->second.size();
}

}  // namespace zena::hub
