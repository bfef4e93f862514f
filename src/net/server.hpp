#pragma once
// The listener and its event-loop threads: a worker over each of the app's loops (one
// io_context and one hub per thread), one acceptor handing new sockets to the threads
// round-robin, one heartbeat timer per thread (not one per connection), and the drain on
// SIGTERM/SIGINT. It builds nothing of the application: the loops, the hubs, the sessions'
// context and the API come from the app (app/app.cpp).
//
// Threading: construct and call listen()/run() from the main thread. run() blocks until the
// server has drained and every thread has stopped. Signals are handled on thread 0.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/services.hpp"
#include "net/worker.hpp"
#include "util/result.hpp"

namespace zena::net {

class server {
public:
    // One worker per loop; `sessions.hubs` has one hub per loop, in the same order. `admin`: the
    // page at / (null: none).
    server(const std::vector<std::unique_ptr<session::loop>>& loops, session::shared& sessions, api::server_api& api,
           admin::console* admin = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the listening socket.
    util::status listen();
    std::uint16_t port() const { return port_; }

    // Serves until SIGTERM/SIGINT (or shutdown()), drains, and returns.
    void run();
    // Starts the drain: stop accepting, close every connection with 1001, wait for the close
    // handshakes up to shutdown.drain_ms, stop. Safe from any thread.
    void shutdown();

private:
    void do_accept();
    void arm_heartbeat(worker& w);
    void arm_expiry(worker& w);
    void await_reload();
    void begin_drain();
    void check_drained(std::chrono::steady_clock::time_point deadline);

    const config::settings& settings_;
    hub::hub_set& hubs_;
    std::vector<std::unique_ptr<worker>> workers_;
    services services_;
    // On worker 0, created once the workers exist.
    std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
    std::optional<boost::asio::signal_set> signals_;
    std::optional<boost::asio::signal_set> reload_signal_;  // SIGHUP: reload the TLS files
    std::shared_ptr<boost::asio::ssl::context> tls_;        // null: plain TCP; swapped on worker 0
    std::optional<boost::asio::steady_timer> drain_timer_;
    std::optional<boost::asio::steady_timer> accept_retry_timer_;
    std::vector<std::thread> threads_;
    std::size_t next_worker_ = 0;
    std::uint16_t port_ = 0;
    bool drain_started_ = false;
};

}  // namespace zena::net
