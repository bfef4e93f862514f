#pragma once
// A connected TCP pair on 127.0.0.1, for unit tests of the frame layer (ws::endpoint) and of the
// application's connection (session::client): Beast's habit of testing a stream over an
// in-memory or socketpair transport, with a real kernel in between so that partial writes and a
// full send buffer are the kernel's own.
//
// The server side is a ws::plain_socket on the test's io_context, handed to the connection
// under test. The client side is a raw non-blocking socket driven by the test: it writes masked
// client frames and reads and parses the server's frames. No thread: every wait drives one
// event-loop turn (io.poll(), then the flush queue, as net::worker does) and polls the client
// socket for at most a millisecond, until its deadline. A wait that passes its deadline fails
// the test instead of hanging.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "ws/endpoint.hpp"
#include "ws/frame.hpp"

namespace zena::ws::testing {

using clock = std::chrono::steady_clock;

// Every wait of a test is bounded by this unless it says otherwise.
inline constexpr std::chrono::milliseconds k_wait{2000};
// For an end that must come from the protocol itself (a close answered, a failed connection),
// not from a timer: well under the close timeouts the tests set (1 s), so that an end that only
// came because the timer fired fails the test.
inline constexpr std::chrono::milliseconds k_prompt{250};

// One frame as the server wrote it.
struct server_frame {
    opcode op = opcode::continuation;
    bool fin = false;
    bool rsv1 = false;
    bool masked = false;  // a server must never mask
    std::string payload;

    std::string_view text() const { return payload; }
    // The close code of a close frame (0 when it has none).
    std::uint16_t close_code() const {
        if (payload.size() < 2) return 0;
        return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                          static_cast<unsigned char>(payload[1]));
    }
    std::string_view close_reason() const {
        return payload.size() < 2 ? std::string_view{} : std::string_view(payload).substr(2);
    }
};

// Parses one server frame from the front of `bytes`; returns it and its size on the wire, or
// nullopt while it is incomplete.
inline std::optional<std::pair<server_frame, std::size_t>> parse_server_frame(std::string_view bytes) {
    if (bytes.size() < 2) return std::nullopt;
    const auto b0 = static_cast<unsigned char>(bytes[0]);
    const auto b1 = static_cast<unsigned char>(bytes[1]);
    server_frame f;
    f.fin = (b0 & 0x80) != 0;
    f.rsv1 = (b0 & 0x40) != 0;
    f.op = static_cast<opcode>(b0 & 0x0F);
    f.masked = (b1 & 0x80) != 0;
    std::size_t pos = 2;
    std::uint64_t length = b1 & 0x7F;
    if (length == 126 || length == 127) {
        const std::size_t n = length == 126 ? 2 : 8;
        if (bytes.size() < pos + n) return std::nullopt;
        length = 0;
        for (std::size_t i = 0; i < n; ++i) length = (length << 8) | static_cast<unsigned char>(bytes[pos + i]);
        pos += n;
    }
    std::string_view mask;
    if (f.masked) {
        if (bytes.size() < pos + 4) return std::nullopt;
        mask = bytes.substr(pos, 4);
        pos += 4;
    }
    if (bytes.size() - pos < length) return std::nullopt;
    f.payload.assign(bytes.substr(pos, length));
    if (f.masked) {
        for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= mask[i % 4];
    }
    return std::pair{std::move(f), pos + static_cast<std::size_t>(length)};
}

// One client frame: masked (as RFC 6455 requires of a client) unless `masked` is false.
inline std::string client_frame(opcode op, std::string_view payload, bool fin = true, bool masked = true) {
    static constexpr unsigned char k_mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0x00) | static_cast<unsigned char>(op)));
    const unsigned char mask_bit = masked ? 0x80 : 0x00;
    if (payload.size() < 126) {
        out.push_back(static_cast<char>(mask_bit | payload.size()));
    } else if (payload.size() <= 0xFFFF) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(payload.size() >> 8));
        out.push_back(static_cast<char>(payload.size() & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((payload.size() >> shift) & 0xFF));
    }
    if (!masked) return out.append(payload);
    out.append(reinterpret_cast<const char*>(k_mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ k_mask[i % 4]));
    return out;
}

// A close frame's payload: the code in network order, then the reason.
inline std::string close_body(std::uint16_t code, std::string_view reason = {}) {
    std::string out{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    return out.append(reason);
}

// `size` bytes of a pattern that differs per `seed`, so that a lost or reordered slice shows.
inline std::string pattern(std::size_t size, unsigned seed) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + seed * 13 + i / 251) % 26);
    return out;
}

// Kernel buffer sizes in bytes (0: the system's default). Linux doubles what it is given, and
// has a floor of a few kilobytes.
struct socket_buffers {
    int server_send = 0;
    int client_receive = 0;
};

class socket_pair {
public:
    using buffers = socket_buffers;

    socket_pair(boost::asio::io_context& io, flush_queue& flush, buffers sizes = {})
        : io_(io), flush_(flush), server_(io) {
        namespace asio = boost::asio;
        using tcp = asio::ip::tcp;
        asio::basic_socket_acceptor<tcp, asio::io_context::executor_type> acceptor(
            io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        client_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (client_fd_ < 0) throw std::runtime_error("socket_pair: socket()");
        // Before connect(): the receive window is agreed on in the handshake.
        if (sizes.client_receive > 0) set_option(client_fd_, SO_RCVBUF, sizes.client_receive);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(acceptor.local_endpoint().port());
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(client_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            throw std::runtime_error("socket_pair: connect()");
        }
        acceptor.accept(server_);
        server_.non_blocking(true);
        server_.set_option(tcp::no_delay(true));
        if (sizes.server_send > 0) set_option(server_.native_handle(), SO_SNDBUF, sizes.server_send);
        const int one = 1;
        ::setsockopt(client_fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~socket_pair() {
        if (client_fd_ >= 0) ::close(client_fd_);
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;

    // The server side, for the connection under test (once).
    plain_socket take_server() { return std::move(server_); }
    // The server side's descriptor (the same once taken), for a test that looks into the kernel.
    // Ask before take_server().
    int server_fd() { return server_.native_handle(); }

    // One turn of the event loop: the handlers that are ready, then the turn's flush.
    void turn() {
        if (io_.stopped()) io_.restart();
        io_.poll();
        flush_.run();
    }

    // Turns until `done()` holds; false at the deadline.
    template <typename Done>
    bool turn_until(Done done, std::chrono::milliseconds wait = k_wait) {
        const auto deadline = clock::now() + wait;
        for (;;) {
            turn();
            if (done()) return true;
            if (clock::now() >= deadline) return false;
            wait_readable(1);
        }
    }

    // ---- the client side

    // Writes all of `bytes` (small: the kernel takes them at once, or within the deadline).
    void send(std::string_view bytes) {
        const auto deadline = clock::now() + k_wait;
        while (!bytes.empty()) {
            const auto n = ::send(client_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                bytes.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw std::runtime_error("socket_pair: send() failed");
            }
            if (clock::now() >= deadline) throw std::runtime_error("socket_pair: send() timed out");
            turn();
        }
    }
    void send_frame(opcode op, std::string_view payload, bool fin = true, bool masked = true) {
        send(client_frame(op, payload, fin, masked));
    }
    void send_text(std::string_view text) { send_frame(opcode::text, text); }

    // Reads what the kernel holds now, at most `max` bytes, without turning the loop; returns
    // how many. Sets eof() when the server closed (or reset) the connection.
    std::size_t read_available(std::size_t max = std::numeric_limits<std::size_t>::max()) {
        std::size_t total = 0;
        char chunk[16 * 1024];
        while (total < max) {
            const auto want = std::min(sizeof chunk, max - total);
            const auto n = ::recv(client_fd_, chunk, want, MSG_DONTWAIT);
            if (n > 0) {
                in_.append(chunk, static_cast<std::size_t>(n));
                total += static_cast<std::size_t>(n);
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) eof_ = true;
            break;
        }
        return total;
    }

    // The bytes read and not yet taken as frames.
    const std::string& pending() const { return in_; }
    bool eof() const { return eof_; }

    // Reads until `n` bytes are held (turning the loop); takes and returns them. Throws at the
    // deadline.
    std::string read_bytes(std::size_t n, std::chrono::milliseconds wait = k_wait) {
        const auto deadline = clock::now() + wait;
        while (in_.size() < n) {
            turn();
            read_available();
            if (in_.size() >= n) break;
            if (eof_) throw std::runtime_error("socket_pair: connection ended before enough bytes came");
            if (clock::now() >= deadline) throw std::runtime_error("socket_pair: timed out reading bytes");
            wait_readable(1);
        }
        auto out = in_.substr(0, n);
        in_.erase(0, n);
        return out;
    }

    // Skips the HTTP head (the 101 response) at the front of the stream.
    std::string read_head(std::chrono::milliseconds wait = k_wait) {
        const auto deadline = clock::now() + wait;
        for (;;) {
            turn();
            read_available();
            const auto end = in_.find("\r\n\r\n");
            if (end != std::string::npos) {
                auto head = in_.substr(0, end + 4);
                in_.erase(0, end + 4);
                return head;
            }
            if (eof_ || clock::now() >= deadline) throw std::runtime_error("socket_pair: no HTTP head");
            wait_readable(1);
        }
    }

    // The next whole frame, reading (and turning the loop) until it has come; nullopt when the
    // connection ended first or the deadline passed.
    std::optional<server_frame> next_frame(std::chrono::milliseconds wait = k_wait) {
        const auto deadline = clock::now() + wait;
        for (;;) {
            if (auto parsed = parse_server_frame(in_)) {
                in_.erase(0, parsed->second);
                return std::move(parsed->first);
            }
            if (eof_ || clock::now() >= deadline) return std::nullopt;
            turn();
            if (read_available() == 0 && !eof_) wait_readable(1);
        }
    }

    // Reads (turning the loop) until the server drops the TCP connection; false at the deadline.
    // What it reads meanwhile is kept for next_frame.
    bool wait_eof(std::chrono::milliseconds wait = k_wait) {
        const auto deadline = clock::now() + wait;
        for (;;) {
            turn();
            read_available();
            if (eof_) return true;
            if (clock::now() >= deadline) return false;
            wait_readable(1);
        }
    }

    int client_fd() const { return client_fd_; }

private:
    static void set_option(int fd, int option, int value) {
        if (::setsockopt(fd, SOL_SOCKET, option, &value, sizeof value) != 0) {
            throw std::runtime_error("socket_pair: setsockopt()");
        }
    }
    // Waits at most `ms` for the client socket to become readable.
    void wait_readable(int ms) {
        pollfd p{client_fd_, POLLIN, 0};
        ::poll(&p, 1, ms);
    }

    boost::asio::io_context& io_;
    flush_queue& flush_;
    plain_socket server_;
    int client_fd_ = -1;
    std::string in_;
    bool eof_ = false;
};

}  // namespace zena::ws::testing
