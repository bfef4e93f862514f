#include "net/admin_live.hpp"

#include "ws/close_codes.hpp"

namespace zena::net {

void admin_live::run(std::string response, std::string_view already_read) {
    start(std::move(response), already_read);
    tick();
}

void admin_live::tick() {
    if (closing()) return;
    if (++ticks_ % k_ticks_per_ping == 0) {
        if (pong_due_) return terminate();  // a whole ping interval without an answer
        pong_due_ = true;
        ping();
    }
    // The snapshot may answer on another thread: the message is queued back on this one.
    std::weak_ptr<endpoint> weak = weak_from_this();
    console_.snapshot([weak, executor = timer_.get_executor()](std::string json) {
        boost::asio::post(executor, [weak, json = std::move(json)] {
            if (auto self = weak.lock()) static_cast<admin_live&>(*self).send(json);
        });
    });
    timer_.expires_after(k_interval);
    timer_.async_wait([weak](boost::system::error_code ec) {
        if (ec) return;
        if (auto self = weak.lock()) static_cast<admin_live&>(*self).tick();
    });
}

void admin_live::send(const std::string& json) {
    if (closing()) return;
    const ws::outbound message{ws::frame::make(ws::opcode::text, json)};
    if (enqueue(message) == queued::full) {
        close(static_cast<std::uint16_t>(ws::close_code::slow_consumer), "send queue full");
    }
}

}  // namespace zena::net
