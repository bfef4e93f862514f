#pragma once
// A hub::connection that records what the hub asks of it, for hub and API unit tests. The real
// transport (session::client over ws::endpoint) has its own unit tests and the end-to-end ones.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/connection.hpp"

namespace zena::hub::testing {

class recording_connection : public connection {
public:
    recording_connection(connection_id id, std::string user) : connection(id, std::move(user)) {}

    bool send(const ws::outbound& message) override {
        // A real connection visits its hub first (hub::visit_pending); this one does not, so
        // that the hub's tests see the hub's own visits.
        if (closed || !accept) return false;
        frames.push_back(message.frame);
        return true;
    }
    // The session's rule (session::client::send_gated), without its budget: held while the gate
    // holds, dropped when not fresh, and the gate ends at the first fresh stored event.
    bool send_gated(subscription& sub, const ws::outbound& message, std::string_view epoch,
                    std::uint64_t seq) override {
        if (sub.gate->holding) {
            sub.gate->held.push_back({message, std::string{epoch}, seq});
            return true;
        }
        if (!sub.gate->fresh(epoch, seq)) return false;
        if (seq != 0) sub.gate.reset();
        return send(message);
    }
    // The backend's subscriptions: recorded; taken unless `refuse_server` is set.
    bool subscribe_by_server(std::string_view channel) override {
        if (refuse_server) return false;
        server_subscribed.emplace_back(channel);
        return true;
    }
    bool unsubscribe_by_server(std::string_view channel) override {
        server_unsubscribed.emplace_back(channel);
        return true;
    }
    void close(ws::close_code code, std::string_view) override {
        if (!closed) closed = code;
    }
    bool heartbeat() override {
        ++heartbeats;
        return alive;
    }

    std::vector<ws::shared_frame> frames;
    std::vector<std::string> server_subscribed;
    std::vector<std::string> server_unsubscribed;
    bool refuse_server = false;
    std::optional<ws::close_code> closed;
    bool accept = true;
    bool alive = true;
    int heartbeats = 0;
};

inline std::shared_ptr<recording_connection> make(connection_id id, std::string user) {
    return std::make_shared<recording_connection>(id, std::move(user));
}

}  // namespace zena::hub::testing
