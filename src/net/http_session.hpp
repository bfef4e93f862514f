#pragma once
// One HTTP connection: reads requests (bounded head, body and time), routes them, and hands a
// WebSocket upgrade on /ws to a session::client (and /echo to an echo_session when
// websocket.test_echo is on). Routes: /ws, /api/* (server_api), /healthz,
// /readyz, /metrics, and the page at / with its /admin/* routes (admin::console, its live view
// an admin_live WebSocket); anything else 404.
//
// Threading: lives on its worker's thread. An API reply may be produced on another thread; it
// is posted back here before it is written.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "net/services.hpp"
#include "net/worker.hpp"

namespace zena::net {

namespace beast = boost::beast;
namespace http = boost::beast::http;

// RFC 9112 §6.1 and §6.3: a request's body is framed by Content-Length, or by a
// Transfer-Encoding whose final coding is chunked; nothing else can be trusted. Beast reads a
// Transfer-Encoding it does not take for chunked (`chunked, identity`, `identity`, `xchunked`)
// as "no body", so the body's bytes would be read as a next request: smuggling, behind a proxy
// that frames them otherwise. The only one accepted is `chunked` alone (one coding, one field
// line, HTTP/1.1). Given the request's version (11 for HTTP/1.1) and its Transfer-Encoding
// field lines, the answer to refuse it with (400, or 501 for codings before chunked), after
// which the connection closes; nullopt when its framing can be trusted.
struct framing_refusal {
    int status;
    std::string_view body;  // JSON
};
std::optional<framing_refusal> refuse_transfer_encoding(unsigned version, std::span<const std::string_view> lines);

// Over plain TCP (`http_session`) or TLS (`https_session`, when server.tls_cert_file is set);
// both are instantiated in http_session.cpp. Over plain TCP the answers join the turn's flush
// (ws::ring_writer) while the thread writes through io_uring and the turn's batch is small
// (worker::answer_joins_flush): an answer and the frames its publish caused share one system call.
template <typename Stream>
class basic_http_session final : public std::enable_shared_from_this<basic_http_session<Stream>>,
                                 private ws::ring_writer {
public:
    // Counts as one of `worker`'s handshakes until its first request is read.
    basic_http_session(Stream&& stream, worker& worker, services& services);
    ~basic_http_session();
    basic_http_session(const basic_http_session&) = delete;
    basic_http_session& operator=(const basic_http_session&) = delete;
    void run();

private:
    using response = http::response<http::string_body>;

    void do_read();
    void on_header(beast::error_code ec);
    // Answers a request head whose body cannot be framed safely (a Transfer-Encoding other than
    // chunked: RFC 9112 §6.3) with 400 or 501, and ends the connection after the answer; true
    // when it did.
    bool refuse_framing();
    void read_body();
    void on_read(beast::error_code ec, std::size_t bytes);
    // Reads the next request, unless one is being read or the pipeline is full or closing.
    void read_next();
    // Gives back this session's place among the worker's handshakes (once).
    void end_handshake();
    void route(http::request<http::string_body>& request);
    // The admission checks (origin, capacity, address), then the WebSocket: a session::client, an
    // echo_session for /echo (websocket.test_echo), or the page's live view (/admin/live).
    enum class socket_kind : std::uint8_t { client, echo, admin_live };
    void upgrade(http::request<http::string_body>&& request, socket_kind kind);
    // The page at / and its /admin/* routes (admin::console).
    void admin(http::request<http::string_body>& request);
    // The connection's stream, handed to the WebSocket endpoint after the upgrade.
    ws::transport take_transport();
    // 426 for a plain request on a WebSocket path.
    void upgrade_required();
    void respond(http::status status, std::string body, std::string_view content_type = "application/json");
    // A place in the answer order for the request just read; returns its slot.
    std::uint64_t reserve();
    // The answer for `slot`; written once every earlier answer is.
    void fill(std::uint64_t slot, const std::shared_ptr<response>& res);
    // Reserves and fills at once: the answer to the request just read.
    void write(const std::shared_ptr<response>& res);
    // Writes the answers ready at the front, unless a write is under way.
    void write_front();
    // Puts the answers ready at the front into out_ (out_count_, out_keep_alive_).
    void gather();
    // out_ from `from` on, through the stream (the write then ends in on_write).
    void write_out(std::size_t from);
    int stage_write(ws::write_slot& slot) override;
    void ring_written(long result) override;
    // out_ was written (or failed with `ec`).
    void on_write(beast::error_code ec);
    void shutdown(boost::asio::socket_base::shutdown_type what);
    // How long the request being read may take (the first one is a handshake).
    std::chrono::milliseconds read_timeout() const;

    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    worker& worker_;
    services& services_;
    bool keep_alive_ = false;  // of the request just read
    unsigned version_ = 11;
    // Unanswered requests in order: the answer (null until produced) and whether to keep the
    // connection after it. first_slot_ numbers the front.
    struct pending {
        std::shared_ptr<response> res;
        bool keep_alive;
    };
    static constexpr std::size_t k_max_pipelined = 64;
    static constexpr std::size_t k_kept_out_bytes = 4096;  // a larger write buffer is released when idle
    std::string out_;                                      // the answers being written
    std::size_t out_count_ = 0;                            // the answers out_ holds
    bool out_keep_alive_ = true;                           // the connection stays open after them
    // A vector, not a deque: it allocates nothing for a connection that only upgrades (a deque
    // allocates its first block at once), and it never holds more than k_max_pipelined.
    std::vector<pending> responses_;
    std::uint64_t first_slot_ = 0;
    // A request that must wait for the answers before it (anything but the API).
    std::optional<http::request<http::string_body>> deferred_;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;     // the client finished sending
    bool upgraded_ = false;    // the stream went to a WebSocket
    bool handshaking_ = true;  // counted in worker_'s handshakes (until the first request is read)
};

// Plain HTTP runs on a socket bound to its thread's io_context from the accept on: the upgrade
// hands that socket to the WebSocket endpoint as it is (a type-erased executor would need a
// release and re-registration with epoll, five system calls per handshake).
using plain_http_stream =
    beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type, beast::unlimited_rate_policy>;
using http_session = basic_http_session<plain_http_stream>;
using https_session = basic_http_session<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace zena::net
