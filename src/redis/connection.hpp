#pragma once
// One connection to Redis (hiredis). Blocking, for the threads that talk to Redis: the client
// events stream (upstream/redis_stream) and the publish ingestion (api/redis_ingest). Every
// call is bounded by the connection's timeout, and waiting for a pushed message is bounded by
// the caller's wait, so a thread that owns a connection can always notice that it must stop.
// Or, once opened, driven by an event loop (redis::line: read_available and write_available,
// which never wait).
//
// Threading: a connection belongs to one thread at a time; nothing here is shared.
// Errors: a call that fails on the wire marks the connection broken (`broken()`); the owner
// drops it and opens a new one. A Redis error reply (`-ERR ...`) is a reply, not a broken line.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace zena::redis {

// Where Redis is: redis://[[user]:password@]host[:port][/db]
struct endpoint {
    std::string host;
    std::uint16_t port = 6379;
    std::string username;  // empty: AUTH with the password alone
    std::string password;  // empty: no AUTH
    int db = 0;
};

// The endpoint of `url`, or nullopt when it is not a redis:// URL (rediss:// and unix sockets
// are not accepted: TLS comes with the hardening work).
std::optional<endpoint> parse_url(std::string_view url);

// A reply, owned. `ok()` is false for an error reply; `error_text()` then says why.
class reply {
public:
    reply() = default;
    explicit reply(redisReply* r);
    // No reply for a command that was written to Redis and not answered (the read timed out or
    // the line broke): Redis may have executed it, or may still (a paused server runs what
    // waits in its socket when it resumes). empty() is true; outcome_unknown() says which.
    static reply unanswered();
    bool empty() const { return !r_; }
    // Empty, and the command may have been executed: see unanswered(). An empty reply without
    // it is a command that never left this process.
    bool outcome_unknown() const { return outcome_unknown_; }
    bool ok() const;  // present and not an error reply
    std::string error_text() const;
    // The string of a string, status or error reply; empty otherwise.
    std::string_view str() const;
    std::int64_t integer() const;
    bool is_array() const;
    bool is_nil() const;
    std::size_t size() const;  // array elements
    // Element i of an array reply, borrowed from this reply.
    const redisReply* element(std::size_t i) const;
    const redisReply* raw() const { return r_.get(); }

private:
    struct deleter {
        void operator()(redisReply* r) const;
    };
    std::unique_ptr<redisReply, deleter> r_;
    bool outcome_unknown_ = false;
};

// Helpers for borrowed elements of array replies.
std::string_view str_of(const redisReply* r);
std::size_t size_of(const redisReply* r);
const redisReply* element_of(const redisReply* r, std::size_t i);

// A command in Redis's wire format (RESP), encoded once by whoever makes it, on its own thread:
// connection and pipeline write it as it is. An argument may come in parts (a key made of a
// prefix and a channel), written one after the other without being joined first. The count
// given first must be the number of arg() calls.
class command_writer {
public:
    explicit command_writer(std::size_t args, std::size_t reserve = 64);
    command_writer& arg(std::span<const std::string_view> parts);
    command_writer& arg(std::initializer_list<std::string_view> parts) {
        return arg(std::span{parts.begin(), parts.size()});
    }
    command_writer& arg(std::string_view a) { return arg(std::span{&a, 1}); }
    std::string take() { return std::move(out_); }

private:
    void number(std::size_t n);
    std::string out_;
};

// `args` encoded as one command.
std::string encode(std::span<const std::string_view> args);

class connection {
public:
    // Connects, authenticates and selects the database; on failure returns null and sets `error`.
    static std::unique_ptr<connection> open(const endpoint& where, std::chrono::milliseconds timeout,
                                            std::string& error);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Sends one command and waits for its reply (bounded by the timeout). An empty reply means
    // the line broke.
    reply command(std::span<const std::string_view> args);
    // Pipelining: queue commands, then flush and read their replies one by one, in order.
    void append(std::span<const std::string_view> args);
    void append_encoded(std::string_view command);  // made by command_writer or encode()
    reply next_reply();

    // For pushed messages (SUBSCRIBE) and long reads: waits up to `wait` for one whole reply.
    // Returns it, or an empty reply on timeout (`broken()` says whether the line broke instead).
    // Commands appended before the call are written first.
    reply wait_reply(std::chrono::milliseconds wait);
    // The next whole reply already read from the line, without waiting; empty when none is.
    // Replies read whole before the line broke are still returned.
    reply buffered_reply();

    // For an event loop (redis::line): the socket; what it holds now, up to `max` bytes, read
    // into the reply reader without waiting (false: the line broke, or Redis closed it); and
    // what of `bytes` the socket takes now, written without waiting (-1: the line broke).
    int fd() const;
    bool read_available(std::size_t max);
    std::ptrdiff_t write_available(std::string_view bytes);

    bool broken() const { return broken_; }
    std::string error() const;

private:
    explicit connection(redisContext* context);
    void io_failed(std::string why);
    redisContext* context_;
    bool broken_ = false;
    std::string io_error_;  // read_available's or write_available's
};

}  // namespace zena::redis
