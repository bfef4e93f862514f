#pragma once
// A hub::connection that records what the hub asks of it, for hub and API unit tests. The real
// transport (session::client over ws::endpoint) has its own unit tests and the end-to-end ones.

#include <optional>
#include <vector>

#include "hub/connection.hpp"

namespace zena::hub::testing {

class recording_connection : public connection {
public:
    recording_connection(connection_id id, std::string user) : connection(id, std::move(user)) {}

    bool send(const ws::outbound& message) override {
        if (closed || !accept) return false;
        frames.push_back(message.frame);
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
    std::optional<ws::close_code> closed;
    bool accept = true;
    bool alive = true;
    int heartbeats = 0;
};

inline std::shared_ptr<recording_connection> make(connection_id id, std::string user) {
    return std::make_shared<recording_connection>(id, std::move(user));
}

}  // namespace zena::hub::testing
