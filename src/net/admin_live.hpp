#pragma once
// The live view's WebSocket (/admin/live, docs/admin.md): once a second it sends the console's
// snapshot of the numbers as one text message. What the client sends is ignored. The HTTP
// session admits it like any WebSocket (origin, capacity, per-address limits) after the console
// has checked the admin session's cookie and the Origin.
//
// Threading: lives on its loop's thread; its timer runs there. A viewer that does not read is
// closed with 4000 like any slow consumer once its send budget is full, and one that stops
// answering pings is terminated within two ping intervals.

#include <chrono>
#include <memory>
#include <string_view>

#include "admin/console.hpp"
#include "ws/asio.hpp"
#include "ws/endpoint.hpp"

namespace zena::net {

class admin_live : public ws::endpoint {
public:
    static constexpr std::chrono::milliseconds k_interval{1000};
    static constexpr int k_ticks_per_ping = 15;

    admin_live(ws::transport&& stream, ws::endpoint::options opts, ws::flush_queue& flush, boost::asio::io_context& io,
               admin::console& console)
        : endpoint(std::move(stream), flush, opts), timer_(io), console_(console) {}

    // Sends the 101, the first snapshot, and one each k_interval after.
    void run(std::string response, std::string_view already_read);

private:
    void on_message(std::string_view, bool) override {}
    void on_pong() override { pong_due_ = false; }
    void on_end() override { timer_.cancel(); }
    void tick();
    void send(const std::string& json);

    boost::asio::steady_timer timer_;
    admin::console& console_;
    int ticks_ = 0;
    bool pong_due_ = false;
};

}  // namespace zena::net
