#pragma once
// A fake HTTP/1.1 backend on 127.0.0.1 for the upstream tests (the HTTP client and its users): it
// records each request and answers as the test says, with keep-alive.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/url.hpp"
#include "ws/asio.hpp"

namespace zena::upstream::test_support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

// One request as the fake backend saw it.
struct received {
    std::string method;
    std::string target;
    std::string content_type;
    std::optional<std::string> signature;  // X-Zena-Signature
    std::string body;
    std::size_t connection = 0;             // which accepted connection (0, 1, ...)
    std::size_t request_on_connection = 0;  // 0 for the first request on it
};

// What the fake backend does with one request.
struct reply {
    unsigned status = 200;
    bool hold = false;         // never answer; the connection stays open until the backend stops
    bool drop = false;         // close the connection without answering
    bool close_after = false;  // answer (keep-alive, as far as the headers go), then close
    std::string raw;           // sent as is instead of an HTTP response, then the connection closes
    std::size_t body_bytes = 0;
    std::string location;  // a Location field, for redirects
};

// An HTTP/1.1 server on 127.0.0.1 with keep-alive, on its own thread; `answer` decides each reply
// (on that thread).
class fake_backend {
public:
    using handler = std::function<reply(const received&)>;

    explicit fake_backend(handler answer) : answer_(std::move(answer)) {
        acceptor_.open(asio::ip::tcp::v4());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~fake_backend() {
        io_.stop();
        thread_.join();
    }
    fake_backend(const fake_backend&) = delete;
    fake_backend& operator=(const fake_backend&) = delete;

    util::http_url url(std::string_view path = "/subscribe") const {
        return util::parse_http_url("http://127.0.0.1:" + std::to_string(port_) + std::string{path});
    }

    std::vector<received> requests() const {
        const std::lock_guard lock(mutex_);
        return received_;
    }
    std::size_t connections() const { return connections_.load(); }

    // Waits until `n` requests arrived; false after `timeout`.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return arrived_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
    }

private:
    struct session {
        explicit session(asio::ip::tcp::socket s, std::size_t i) : socket(std::move(s)), index(i) {}
        asio::ip::tcp::socket socket;
        std::size_t index;
        std::size_t requests = 0;
        beast::flat_buffer buffer;
        http::request<http::string_body> request;
        http::response<http::string_body> response;
    };

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
            if (ec) return;
            read(std::make_shared<session>(std::move(socket), connections_.fetch_add(1)));
            accept();
        });
    }

    void read(const std::shared_ptr<session>& s) {
        s->request = {};
        http::async_read(s->socket, s->buffer, s->request, [this, s](boost::system::error_code ec, std::size_t) {
            if (!ec) on_request(s);
        });
    }

    void on_request(const std::shared_ptr<session>& s) {
        received r;
        r.method = std::string{s->request.method_string()};
        r.target = std::string{s->request.target()};
        r.content_type = std::string{s->request[http::field::content_type]};
        if (const auto it = s->request.find("X-Zena-Signature"); it != s->request.end()) {
            r.signature = std::string{it->value()};
        }
        r.body = s->request.body();
        r.connection = s->index;
        r.request_on_connection = s->requests++;
        {
            const std::lock_guard lock(mutex_);
            received_.push_back(r);
        }
        arrived_.notify_all();
        const auto what = answer_(r);
        if (what.hold) {
            held_.push_back(s);
            return;
        }
        boost::system::error_code ignored;
        if (what.drop) {
            s->socket.close(ignored);
            return;
        }
        if (!what.raw.empty()) {
            auto raw = std::make_shared<std::string>(what.raw);
            asio::async_write(s->socket, asio::buffer(*raw), [s, raw](boost::system::error_code, std::size_t) {
                boost::system::error_code ec;
                s->socket.close(ec);
            });
            return;
        }
        s->response = {static_cast<http::status>(what.status), 11};
        s->response.set(http::field::content_type, "application/json");
        s->response.body() = std::string(what.body_bytes, 'x');
        if (!what.location.empty()) s->response.set(http::field::location, what.location);
        s->response.keep_alive(true);
        s->response.prepare_payload();
        const bool close_after = what.close_after;
        http::async_write(s->socket, s->response, [this, s, close_after](boost::system::error_code ec, std::size_t) {
            if (ec) return;
            if (close_after) {
                boost::system::error_code ignored_close;
                s->socket.close(ignored_close);
                return;
            }
            read(s);
        });
    }

    handler answer_;
    asio::io_context io_{1};
    asio::ip::tcp::acceptor acceptor_{io_};
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> connections_{0};
    std::vector<std::shared_ptr<session>> held_;  // the backend's thread only
    mutable std::mutex mutex_;
    mutable std::condition_variable arrived_;
    std::vector<received> received_;
    std::thread thread_;
};

// A port on 127.0.0.1 with nothing listening (bound, then released).
inline std::string refused_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    acceptor.close();
    return std::to_string(port);
}

}  // namespace zena::upstream::test_support
