#include "upstream/http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "observability/log.hpp"
#include "ws/asio.hpp"

namespace zena::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

// A response header beyond this is refused: a backend's answer is its status and a short body.
constexpr std::uint32_t k_max_header_bytes = 16 * 1024;

// The client's TLS context: TLS 1.2+, the peer verified against `ca_file` or the system's store.
// (The host name is set per connection.) Null with `error` when the trust store does not load.
std::unique_ptr<ssl::context> make_client_context(const std::string& ca_file, std::string& error) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression,
                     ec);
    if (!ec && SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
        error = "cannot require TLS 1.2 or later";
        return nullptr;
    }
    if (!ec) ctx->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
        if (ca_file.empty()) {
            ctx->set_default_verify_paths(ec);
        } else {
            ctx->load_verify_file(ca_file, ec);
        }
    }
    if (ec) {
        error =
            (ca_file.empty() ? std::string{"the system's certificates"} : "CA file " + ca_file) + ": " + ec.message();
        return nullptr;
    }
    return ctx;
}

std::string origin_of(const util::http_url& url) {
    return (url.tls ? "https://" : "http://") + url.host + ':' + url.port;
}

std::string host_field(const util::http_url& url) {
    return url.port == (url.tls ? "443" : "80") ? url.host : url.host + ':' + url.port;
}

bool is_ip_address(const std::string& host) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

bool is_redirect(unsigned status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Where a redirect's Location points, from `from`: an absolute http(s) URL (never from https to
// http) or an absolute path on the same origin; nullopt for anything else.
std::optional<util::http_url> redirect_target(const util::http_url& from, std::string_view location) {
    if (location.starts_with('/') && !location.starts_with("//")) {
        auto to = from;
        to.target = std::string{location};
        return to;
    }
    auto to = util::parse_http_url(location);
    if (to.host.empty() || (from.tls && !to.tls)) return std::nullopt;
    return to;
}

}  // namespace

util::status check_ca_file(const std::string& ca_file) {
    std::string error;
    if (!make_client_context(ca_file, error)) return util::error{error};
    return {};
}

struct http_client::impl {
    using done_fn = std::function<void(http_result)>;

    // A request not yet answered.
    struct pending {
        http_request request;
        done_fn done;
        steady::time_point deadline;
    };

    // One kept-alive connection to an origin; it serves one exchange at a time.
    struct connection {
        connection(asio::io_context& io, ssl::context* tls, std::string o) : origin(std::move(o)) {
            if (tls) {
                secure.emplace(io, *tls);
            } else {
                plain.emplace(io);
            }
        }
        tcp::socket& socket() { return plain ? *plain : secure->next_layer(); }
        // Calls `f` with the stream to read and write: the socket, or the TLS stream over it.
        template <typename F>
        void with_stream(F&& f) {
            if (plain) {
                f(*plain);
            } else {
                f(*secure);
            }
        }
        std::string origin;
        std::optional<tcp::socket> plain;
        std::optional<ssl::stream<tcp::socket>> secure;
        beast::flat_buffer buffer;
    };
    using connection_ptr = std::shared_ptr<connection>;

    // One request on its way. Every handler holds it and returns at once once it is `finished`
    // (answered by its deadline, or at stop), so late completions change nothing.
    struct exchange {
        exchange(asio::io_context& io, pending p) : job(std::move(p)), deadline(io) {}
        pending job;  // its request's URL and method change when a redirect is followed
        asio::steady_timer deadline;
        http::request<http::string_body> message;
        std::optional<http::response_parser<http::string_body>> parser;
        connection_ptr conn;
        std::string origin;
        bool reused = false;   // conn came from the idle ones
        bool retried = false;  // already moved once to a fresh connection
        bool finished = false;
    };
    using exchange_ptr = std::shared_ptr<exchange>;

    explicit impl(http_client_settings s) : settings(std::move(s)), work(asio::make_work_guard(io)), resolver(io) {
        settings.max_in_flight = std::max<std::size_t>(settings.max_in_flight, 1);  // 0 would never send
        tls = make_client_context(settings.ca_file, tls_error);
        thread = std::thread([this] { io.run(); });
    }

    // On the client's thread from here on.

    void enqueue(pending p) {
        if (stopping) return deliver(p, util::error{"stopped"});
        if (p.request.url.host.empty()) return deliver(p, util::error{"no http:// or https:// URL"});
        if (active.size() < settings.max_in_flight) return start(std::move(p));
        if (queue.size() >= settings.max_queue) return deliver(p, util::error{"queue full"});
        queue.push_back(std::move(p));
    }

    void start(pending p) {
        if (steady::now() >= p.deadline) return deliver(p, util::error{"timed out in the queue"});
        auto ex = std::make_shared<exchange>(io, std::move(p));
        active.insert(ex);
        ex->deadline.expires_at(ex->job.deadline);
        ex->deadline.async_wait([this, ex](boost::system::error_code ec) {
            if (!ec) fail(ex, "timed out");
        });
        begin(ex);
    }

    // Builds the message for the exchange's current URL and sends it (again after a redirect).
    void begin(const exchange_ptr& ex) {
        const auto& request = ex->job.request;
        if (request.url.tls && !tls) return fail(ex, "tls: " + tls_error);
        auto& message = ex->message;
        message = {request.method == http_method::get ? http::verb::get : http::verb::post, request.url.target, 11};
        message.set(http::field::host, host_field(request.url));
        message.set(http::field::user_agent, "zena-realtime");
        if (request.method == http_method::post) message.set(http::field::content_type, request.content_type);
        for (const auto& [name, value] : request.headers) message.set(name, value);
        message.body() = request.body;
        message.prepare_payload();
        ex->origin = origin_of(request.url);
        if (auto conn = take_idle(ex->origin)) {
            ex->reused = true;
            return send(ex, conn);
        }
        open(ex);
    }

    // The most recently used idle connection to `origin` that the server has not closed meanwhile.
    connection_ptr take_idle(const std::string& origin) {
        const auto it = idle.find(origin);
        if (it == idle.end()) return nullptr;
        auto& pool = it->second;
        connection_ptr found;
        while (!found && !pool.empty()) {
            auto conn = std::move(pool.back());
            pool.pop_back();
            if (still_open(*conn)) {
                found = std::move(conn);
            } else {
                close(*conn);
            }
        }
        if (pool.empty()) idle.erase(it);
        return found;
    }

    // An idle connection is usable when reading it would block: the server has neither closed it
    // (end of stream, or TLS's close_notify) nor sent anything unasked. (The socket stays in
    // non-blocking mode, which Asio's asynchronous operations do not mind.)
    static bool still_open(connection& conn) {
        auto& socket = conn.socket();
        boost::system::error_code ec;
        socket.non_blocking(true, ec);
        if (ec) return false;
        char byte = 0;
        (void)socket.receive(asio::buffer(&byte, 1), asio::socket_base::message_peek, ec);
        return ec == asio::error::would_block;
    }

    static void close(connection& conn) {
        boost::system::error_code ignored;
        conn.socket().close(ignored);
    }

    void open(const exchange_ptr& ex) {
        const auto& url = ex->job.request.url;
        auto conn = std::make_shared<connection>(io, url.tls ? tls.get() : nullptr, ex->origin);
        ex->conn = conn;
        ex->reused = false;
        resolver.async_resolve(
            url.host, url.port,
            [this, ex, conn](boost::system::error_code ec, const tcp::resolver::results_type& endpoints) {
                if (ex->finished) return;
                if (ec) return fail(ex, "resolve: " + ec.message());
                asio::async_connect(conn->socket(), endpoints,
                                    [this, ex, conn](boost::system::error_code connect_ec, const tcp::endpoint&) {
                                        if (ex->finished) return;
                                        if (connect_ec) return fail(ex, "connect: " + connect_ec.message());
                                        if (conn->secure) return handshake(ex, conn);
                                        send(ex, conn);
                                    });
            });
    }

    // The TLS handshake, with the host name the certificate must carry (and SNI for a DNS name).
    void handshake(const exchange_ptr& ex, const connection_ptr& conn) {
        const auto& host = ex->job.request.url.host;
        SSL* handle = conn->secure->native_handle();
        bool named = false;
        if (is_ip_address(host)) {
            named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), host.c_str()) == 1;
        } else {
            SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            named = SSL_set_tlsext_host_name(handle, host.c_str()) == 1 && SSL_set1_host(handle, host.c_str()) == 1;
        }
        if (!named) return fail(ex, "tls: cannot check the host name " + host);
        conn->secure->async_handshake(ssl::stream_base::client, [this, ex, conn](boost::system::error_code ec) {
            if (ex->finished) return;
            if (ec) {
                const long verified = SSL_get_verify_result(conn->secure->native_handle());
                if (verified != X509_V_OK) {
                    return fail(
                        ex, std::string{"tls: certificate not trusted: "} + X509_verify_cert_error_string(verified));
                }
                return fail(ex, "tls: " + ec.message());
            }
            send(ex, conn);
        });
    }

    void send(const exchange_ptr& ex, const connection_ptr& conn) {
        ex->conn = conn;
        ex->parser.emplace();
        ex->parser->header_limit(k_max_header_bytes);
        ex->parser->body_limit(settings.max_response_bytes);
        conn->with_stream([&](auto& stream) {
            http::async_write(stream, ex->message,
                              [this, ex, conn, &stream](boost::system::error_code ec, std::size_t) {
                                  if (ex->finished) return;
                                  if (ec) return failed(ex, "write", ec);
                                  http::async_read(stream, conn->buffer, *ex->parser,
                                                   [this, ex, conn](boost::system::error_code read_ec, std::size_t) {
                                                       if (ex->finished) return;
                                                       if (read_ec) return failed(ex, "read", read_ec);
                                                       on_response(ex, conn);
                                                   });
                              });
        });
    }

    void on_response(const exchange_ptr& ex, const connection_ptr& conn) {
        auto& message = ex->parser->get();
        const unsigned status = message.result_int();
        // Kept only when the message ended cleanly and nothing followed it.
        const bool reusable = status >= 200 && ex->parser->keep_alive() && conn->buffer.size() == 0;
        auto& request = ex->job.request;
        if (is_redirect(status) && request.max_redirects > 0) {
            const auto to = redirect_target(request.url, message[http::field::location]);
            release(ex, reusable);
            if (!to) return fail(ex, "redirect " + std::to_string(status) + " to an unsupported location");
            --request.max_redirects;
            // The caller's fields (a signature, say) go only to the origin they were meant for.
            if (origin_of(*to) != ex->origin) request.headers.clear();
            if (status == 303 || ((status == 301 || status == 302) && request.method == http_method::post)) {
                request.method = http_method::get;
                request.body.clear();
            }
            request.url = *to;
            ex->retried = false;
            return begin(ex);
        }
        finish(ex, http_response{.status = status, .body = std::move(message.body())}, reusable);
    }

    // A write or read failed. On a reused connection before any byte of the answer, the server
    // most likely closed it while idle (a keep-alive timeout racing our request): the request
    // moves once to a fresh connection, within the same deadline.
    void failed(const exchange_ptr& ex, std::string_view step, const boost::system::error_code& ec) {
        if (ex->reused && !ex->retried && !ex->parser->got_some()) {
            ex->retried = true;
            close(*ex->conn);
            return open(ex);
        }
        if (ec == http::error::body_limit || ec == http::error::header_limit) {
            return fail(ex, "response too large (more than " + std::to_string(settings.max_response_bytes) +
                                " bytes of body or " + std::to_string(k_max_header_bytes) + " of header)");
        }
        fail(ex, std::string{step} + ": " + ec.message());
    }

    void fail(const exchange_ptr& ex, std::string why) { finish(ex, util::error{std::move(why)}, false); }

    // Answers the exchange. (`ex` is always a handler's own copy, never `active`'s.)
    void finish(const exchange_ptr& ex, http_result outcome, bool keep_connection) {
        if (ex->finished) return;
        ex->finished = true;
        ex->deadline.cancel();
        active.erase(ex);
        release(ex, keep_connection);
        deliver(ex->job, std::move(outcome));
        pump();
    }

    // The exchange's connection goes back to its origin's idle ones, or is closed.
    void release(const exchange_ptr& ex, bool keep_connection) {
        if (!ex->conn) return;
        auto conn = std::move(ex->conn);
        ex->conn.reset();
        if (!keep_connection || stopping) return close(*conn);
        auto& pool = idle[conn->origin];
        if (pool.size() >= settings.max_idle_per_origin) return close(*conn);
        pool.push_back(std::move(conn));
    }

    void pump() {
        while (!stopping && active.size() < settings.max_in_flight && !queue.empty()) {
            auto p = std::move(queue.front());
            queue.pop_front();
            start(std::move(p));
        }
    }

    static void deliver(pending& p, http_result outcome) {
        auto done = std::move(p.done);
        if (done) done(std::move(outcome));
    }

    void delay(std::chrono::milliseconds wait, std::function<void()> task) {
        if (stopping) return;
        auto timer = std::make_shared<asio::steady_timer>(io, wait);
        timers.insert(timer);
        timer->async_wait([this, timer, task = std::move(task)](boost::system::error_code ec) {
            timers.erase(timer);
            if (!ec && !stopping) task();
        });
    }

    // stop()'s task on this thread: every request still pending answers "stopped", every socket
    // and timer closes; the thread's run() returns once the cancelled operations are through.
    void shut_down() {
        stopping = true;
        resolver.cancel();
        for (auto& [origin, pool] : idle) {
            for (const auto& conn : pool) close(*conn);
        }
        idle.clear();
        for (const auto& timer : timers) timer->cancel();
        const auto in_flight = std::exchange(active, {});
        auto waiting = std::exchange(queue, {});
        for (const auto& ex : in_flight) {
            ex->finished = true;
            ex->deadline.cancel();
            if (ex->conn) close(*ex->conn);
        }
        for (const auto& ex : in_flight) deliver(ex->job, util::error{"stopped"});
        for (auto& p : waiting) deliver(p, util::error{"stopped"});
        work.reset();
    }

    http_client_settings settings;
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::unique_ptr<ssl::context> tls;  // null when the trust store did not load
    std::string tls_error;
    tcp::resolver resolver;
    std::deque<pending> queue;                                             // waiting for a slot, oldest first
    std::unordered_set<exchange_ptr> active;                               // on the wire; at most max_in_flight
    std::map<std::string, std::vector<connection_ptr>, std::less<>> idle;  // by origin
    std::set<std::shared_ptr<asio::steady_timer>> timers;                  // delayed tasks
    bool stopping = false;
    std::thread thread;
};

http_client::http_client(http_client_settings settings) : impl_(std::make_unique<impl>(std::move(settings))) {}

http_client::~http_client() { stop(); }

void http_client::send(http_request request, std::function<void(http_result)> done) {
    const auto deadline = steady::now() + request.timeout;
    impl::pending p{.request = std::move(request), .done = std::move(done), .deadline = deadline};
    asio::post(impl_->io, [i = impl_.get(), p = std::move(p)]() mutable { i->enqueue(std::move(p)); });
}

void http_client::post(std::function<void()> task) { asio::post(impl_->io, std::move(task)); }

void http_client::after(std::chrono::milliseconds delay, std::function<void()> task) {
    asio::post(impl_->io,
               [i = impl_.get(), delay, task = std::move(task)]() mutable { i->delay(delay, std::move(task)); });
}

void http_client::stop() {
    if (!impl_->thread.joinable()) return;
    try {
        asio::post(impl_->io, [i = impl_.get()] { i->shut_down(); });
    } catch (...) {
        // post throws only when it cannot allocate. The pending requests could then never be
        // answered and their callers would wait forever: stop here instead.
        std::terminate();
    }
    impl_->thread.join();
}

}  // namespace zena::upstream
