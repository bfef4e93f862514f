#pragma once
// The asynchronous side of the project's Redis client, shared by redis::pipeline and
// redis::subscriber: a connection made on a thread of its own (a blocking connect, AUTH, SELECT and
// the owner's setup, each bounded by the timeout, so an unreachable Redis never stalls an event
// loop), then driven by an io_context's thread: what is sent is written without blocking, what
// arrives is read into hiredis's reader when the socket is readable, and the owner takes the whole
// replies. The owners run on an event loop of the server (engine/redis: loop 0, so a publish
// crosses no thread) or, given none, on a thread of their own (`context_thread`).
//
// Threading: a line and its callbacks belong to its io_context's thread; `connect_on_a_thread`'s
// `done` is posted there. Asio stays in line.cpp: this header only names io_context.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "redis/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace zena::redis {

class line : public std::enable_shared_from_this<line> {
public:
    // Takes the connection (made by connect_on_a_thread); nothing is read until read().
    static std::shared_ptr<line> make(boost::asio::io_context& io, std::unique_ptr<connection> c);
    ~line();
    line(const line&) = delete;
    line& operator=(const line&) = delete;

    // Appends an encoded command (command_writer, encode()); written by flush().
    void send(std::string_view encoded);
    // Writes what was sent, as much as the socket takes now; the rest once it is writable.
    void flush();
    // Calls `on_readable` each time something arrived (take the replies with next()), and
    // `on_broken` once if the line breaks (a read or write failed, or Redis closed it). Neither
    // runs after close().
    void read(std::function<void()> on_readable, std::function<void()> on_broken);
    // The next whole reply already read, or an empty one.
    reply next() { return connection_->buffered_reply(); }
    bool broken() const { return connection_->broken() || failed_; }
    std::string error() const;
    // Stops reading and writing and closes the socket; the callbacks are dropped.
    void close();

private:
    struct io_state;
    line(boost::asio::io_context& io, std::unique_ptr<connection> c);
    void wait_readable();
    void fail(std::string why);

    std::unique_ptr<connection> connection_;
    std::unique_ptr<io_state> io_;
    std::string out_;
    std::size_t written_ = 0;  // of out_, already written
    bool waiting_writable_ = false;
    bool failed_ = false;
    bool closed_ = false;
    std::string why_;
    std::function<void()> on_readable_;
    std::function<void()> on_broken_;
};

// Runs `attempt` (a blocking connect and setup) on a thread of its own and posts its result to
// `io`: `done(connection or null, error)` runs on io's thread. At most one attempt at a time per
// connector; the destructor and join() wait for a running one (bounded by its timeout).
class connector {
public:
    using attempt_fn = std::function<std::unique_ptr<connection>(std::string& error)>;
    using done_fn = std::function<void(std::unique_ptr<connection>, std::string error)>;
    connector() = default;
    ~connector() { join(); }
    connector(const connector&) = delete;
    connector& operator=(const connector&) = delete;
    void start(boost::asio::io_context& io, attempt_fn attempt, done_fn done);
    void join();

private:
    std::thread thread_;
};

// An io_context with a thread of its own running it, for a pipeline or subscriber given no
// event loop. stop() lets the context finish what is posted, then joins the thread.
class context_thread {
public:
    context_thread();
    ~context_thread();
    context_thread(const context_thread&) = delete;
    context_thread& operator=(const context_thread&) = delete;
    boost::asio::io_context& io();
    // Runs `last` on the thread, then ends it (the owner's teardown): returns when it has.
    void stop(std::function<void()> last);
    bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

private:
    struct state;
    std::unique_ptr<state> state_;
    std::thread thread_;
};

}  // namespace zena::redis
