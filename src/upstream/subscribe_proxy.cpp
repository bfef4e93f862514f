#include "upstream/subscribe_proxy.hpp"

#include <deque>
#include <exception>
#include <optional>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "observability/log.hpp"
#include "protocol/json_writer.hpp"
#include "upstream/webhook_body.hpp"
#include "ws/asio.hpp"

namespace zena::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

using steady = std::chrono::steady_clock;

// The response's bound split between the header and the body (the backend's answer is its status:
// a body is read only to find the end of the message).
constexpr std::uint32_t k_max_header_bytes = 16 * 1024;
constexpr std::uint64_t k_max_body_bytes = k_max_proxy_response_bytes - k_max_header_bytes;

// Failures are logged at info, at most this many lines a second (a backend that is down would
// otherwise log one line per subscribe); the lines held back are counted in the next one.
constexpr double k_failure_logs_per_second = 1;

}  // namespace

std::string_view to_string(proxy_verdict verdict) {
    switch (verdict) {
        case proxy_verdict::allow: return "allow";
        case proxy_verdict::forbid: return "forbid";
        case proxy_verdict::unavailable: return "unavailable";
    }
    return "unavailable";
}

proxy_verdict verdict_of_status(unsigned status) {
    if (status == 200) return proxy_verdict::allow;
    if (status > 200 && status < 500) return proxy_verdict::forbid;
    return proxy_verdict::unavailable;
}

std::string subscribe_check_body(std::string_view user, std::string_view channel) {
    return protocol::json_object().add("userId", user).add("channel", channel).str();
}

struct subscribe_proxy::impl {
    // A check not yet answered.
    struct pending {
        std::string user;
        std::string channel;
        std::function<void(proxy_verdict)> done;
        steady::time_point deadline;
    };

    // One keep-alive connection to the backend; it serves one exchange at a time.
    struct connection {
        explicit connection(asio::io_context& io) : stream(io) {}
        beast::tcp_stream stream;
        beast::flat_buffer buffer{k_max_proxy_response_bytes};
    };

    // One check on the wire. Every handler holds it and returns at once once it is `finished`
    // (answered by its deadline, or at shutdown), so late completions change nothing.
    struct exchange {
        exchange(asio::io_context& io, pending p) : check(std::move(p)), deadline(io) {}
        pending check;
        asio::steady_timer deadline;
        http::request<http::string_body> request;
        std::optional<http::response_parser<http::string_body>> parser;
        std::shared_ptr<connection> conn;
        bool reused = false;   // conn came from the idle ones
        bool retried = false;  // already moved once to a fresh connection
        bool finished = false;
    };
    using exchange_ptr = std::shared_ptr<exchange>;

    impl(subscribe_proxy_settings s, observability::metrics& m)
        : settings(std::move(s)), metrics(m), work(asio::make_work_guard(io)), resolver(io) {
        settings.max_in_flight = std::max<std::size_t>(settings.max_in_flight, 1);  // 0 would never send
        usable = !url.host.empty() && !url.tls;
        if (!usable) {
            spdlog::error("subscribe proxy needs an http:// URL; every check answers unavailable url={}",
                          url.host.empty() ? std::string{"(none)"} : util::to_string(url));
        }
        host_header = url.port == "80" ? url.host : url.host + ':' + url.port;
        thread = std::thread([this] { io.run(); });
    }

    // On the proxy's thread from here on.

    void enqueue(pending p) {
        if (!usable) return answer(p, proxy_verdict::unavailable, "no http:// URL");
        if (stopping) return answer(p, proxy_verdict::unavailable, "stopping");
        if (active.size() < settings.max_in_flight) return start(std::move(p));
        if (queue.size() >= settings.max_queue) return answer(p, proxy_verdict::unavailable, "queue full");
        queue.push_back(std::move(p));
    }

    void start(pending p) {
        if (steady::now() >= p.deadline) return answer(p, proxy_verdict::unavailable, "timed out in the queue");
        auto ex = std::make_shared<exchange>(io, std::move(p));
        active.insert(ex);
        ex->deadline.expires_at(ex->check.deadline);
        ex->deadline.async_wait([this, ex](boost::system::error_code ec) {
            if (!ec) fail(ex, "timed out");
        });
        auto& request = ex->request;
        request = {http::verb::post, url.target, 11};
        request.set(http::field::host, host_header);
        request.set(http::field::content_type, "application/json");
        request.set(http::field::user_agent, "zena-realtime");
        request.body() = subscribe_check_body(ex->check.user, ex->check.channel);
        if (!settings.secret.empty())
            request.set("X-Zena-Signature", webhook_signature(settings.secret, request.body()));
        request.prepare_payload();
        if (auto conn = take_idle()) {
            ex->reused = true;
            send(ex, conn);
        } else {
            open(ex);
        }
    }

    // The most recently used idle connection that the server has not closed meanwhile.
    std::shared_ptr<connection> take_idle() {
        while (!idle.empty()) {
            auto conn = std::move(idle.back());
            idle.pop_back();
            if (still_open(*conn)) return conn;
            close(*conn);
        }
        return nullptr;
    }

    // An idle connection is usable when reading it would block: the server has neither closed it
    // (end of stream) nor sent anything unasked. (The socket stays in non-blocking mode, which
    // Asio's asynchronous operations do not mind.)
    static bool still_open(connection& conn) {
        auto& socket = conn.stream.socket();
        boost::system::error_code ec;
        socket.non_blocking(true, ec);
        if (ec) return false;
        char byte = 0;
        (void)socket.receive(asio::buffer(&byte, 1), asio::socket_base::message_peek, ec);
        return ec == asio::error::would_block;
    }

    static void close(connection& conn) {
        boost::system::error_code ignored;
        conn.stream.socket().close(ignored);
    }

    void open(const exchange_ptr& ex) {
        auto conn = std::make_shared<connection>(io);
        ex->conn = conn;
        ex->reused = false;
        resolver.async_resolve(
            url.host, url.port,
            [this, ex, conn](boost::system::error_code ec, const asio::ip::tcp::resolver::results_type& endpoints) {
                if (ex->finished) return;
                if (ec) return fail(ex, "resolve: " + ec.message());
                conn->stream.async_connect(endpoints,
                                           [this, ex, conn](boost::system::error_code connect_ec, const auto&) {
                                               if (ex->finished) return;
                                               if (connect_ec) return fail(ex, "connect: " + connect_ec.message());
                                               send(ex, conn);
                                           });
            });
    }

    void send(const exchange_ptr& ex, const std::shared_ptr<connection>& conn) {
        ex->conn = conn;
        ex->parser.emplace();
        ex->parser->header_limit(k_max_header_bytes);
        ex->parser->body_limit(k_max_body_bytes);
        http::async_write(conn->stream, ex->request, [this, ex, conn](boost::system::error_code ec, std::size_t) {
            if (ex->finished) return;
            if (ec) return failed(ex, "write", ec);
            http::async_read(conn->stream, conn->buffer, *ex->parser,
                             [this, ex, conn](boost::system::error_code read_ec, std::size_t) {
                                 if (ex->finished) return;
                                 if (read_ec) return failed(ex, "read", read_ec);
                                 const auto status = ex->parser->get().result_int();
                                 // Reused only when the message ended cleanly and nothing followed it.
                                 const bool reusable =
                                     status >= 200 && ex->parser->keep_alive() && conn->buffer.size() == 0;
                                 finish(ex, verdict_of_status(status), reusable, "status " + std::to_string(status));
                             });
        });
    }

    // A write or read failed. On a reused connection before any byte of the answer, the server
    // most likely closed it while idle (a keep-alive timeout racing our request): the check moves
    // once to a fresh connection, within the same deadline.
    void failed(const exchange_ptr& ex, std::string_view step, const boost::system::error_code& ec) {
        if (ex->reused && !ex->retried && !ex->parser->got_some()) {
            ex->retried = true;
            close(*ex->conn);
            return open(ex);
        }
        fail(ex, std::string{step} + ": " + ec.message());
    }

    void fail(const exchange_ptr& ex, std::string_view why) { finish(ex, proxy_verdict::unavailable, false, why); }

    // Answers the exchange's check. (`ex` is always a handler's own copy, never `active`'s.)
    void finish(const exchange_ptr& ex, proxy_verdict verdict, bool keep_connection, std::string_view why) {
        if (ex->finished) return;
        ex->finished = true;
        ex->deadline.cancel();
        active.erase(ex);
        if (ex->conn) {
            if (keep_connection) {
                idle.push_back(std::move(ex->conn));
            } else {
                close(*ex->conn);
            }
            ex->conn.reset();
        }
        answer(ex->check, verdict, why);
        pump();
    }

    void pump() {
        while (!stopping && active.size() < settings.max_in_flight && !queue.empty()) {
            auto p = std::move(queue.front());
            queue.pop_front();
            start(std::move(p));
        }
    }

    void answer(pending& p, proxy_verdict verdict, std::string_view why) {
        if (verdict == proxy_verdict::unavailable && !stopping) {
            if (failure_log.allow(observability::monotonic_ms())) {
                spdlog::info("subscribe proxy unavailable url={} error=\"{}\" suppressed={}", util::to_string(url), why,
                             failure_log.take_suppressed());
            }
        } else {
            spdlog::debug("subscribe proxy verdict={} reason=\"{}\"", to_string(verdict), why);
        }
        auto done = std::move(p.done);
        if (done) done(verdict);
    }

    // The destructor's last task on this thread: every check still pending answers unavailable,
    // every socket closes; the thread's run() returns once the cancelled operations are through.
    void shut_down() {
        stopping = true;
        resolver.cancel();
        for (const auto& conn : idle) close(*conn);
        idle.clear();
        const auto in_flight = std::exchange(active, {});
        auto waiting = std::exchange(queue, {});
        for (const auto& ex : in_flight) {
            ex->finished = true;
            ex->deadline.cancel();
            if (ex->conn) close(*ex->conn);
        }
        const auto pending_count = in_flight.size() + waiting.size();
        for (const auto& ex : in_flight) answer(ex->check, proxy_verdict::unavailable, "stopping");
        for (auto& p : waiting) answer(p, proxy_verdict::unavailable, "stopping");
        if (pending_count > 0) {
            spdlog::info("subscribe proxy stopped; pending checks answered unavailable count={}", pending_count);
        }
        work.reset();
    }

    subscribe_proxy_settings settings;  // immutable once the thread runs (check reads the timeout)
    observability::metrics& metrics;
    const util::http_url& url = settings.url;
    bool usable = false;
    std::string host_header;
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    asio::ip::tcp::resolver resolver;
    std::deque<pending> queue;                // waiting for a slot, oldest first
    std::unordered_set<exchange_ptr> active;  // on the wire; at most max_in_flight
    std::vector<std::shared_ptr<connection>> idle;
    observability::log_limiter failure_log{k_failure_logs_per_second};
    bool stopping = false;
    std::thread thread;
};

subscribe_proxy::subscribe_proxy(subscribe_proxy_settings settings, observability::metrics& metrics)
    : impl_(std::make_unique<impl>(std::move(settings), metrics)) {}

subscribe_proxy::~subscribe_proxy() {
    try {
        asio::post(impl_->io, [i = impl_.get()] { i->shut_down(); });
    } catch (...) {
        // post throws only when it cannot allocate. The pending checks could then never be
        // answered and their callers would wait forever: stop here instead.
        std::terminate();
    }
    impl_->thread.join();
}

void subscribe_proxy::check(std::string user, std::string channel, std::function<void(proxy_verdict)> done) {
    impl::pending p{.user = std::move(user),
                    .channel = std::move(channel),
                    .done = std::move(done),
                    .deadline = steady::now() + impl_->settings.timeout};
    asio::post(impl_->io, [i = impl_.get(), p = std::move(p)]() mutable { i->enqueue(std::move(p)); });
}

}  // namespace zena::upstream
