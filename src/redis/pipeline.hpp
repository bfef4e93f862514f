#pragma once
// Commands to one Redis, pipelined: callers on any thread submit commands with a callback; the
// pipeline writes what was submitted, several commands per write, and hands each reply to its
// command's callback, in order. It runs on an io_context's thread (an event loop of the server,
// `pipeline_options::context`, or a thread of its own): what one handler of that loop submits
// goes out in one write when the handler returns, and new commands are written while the replies
// of earlier ones are still due, so Redis always has work: a command never waits for a whole
// earlier batch to be answered. A thousand publishes submitted while a round trip is under way
// cost one more write, not a thousand. Used by the Redis engine (engine/redis); built on
// redis::connection, the project's one Redis client, and redis::line.
//
// When Redis cannot be reached, every command fails at once (its callback gets an empty reply)
// rather than waiting: a caller answers "unavailable" in microseconds. A command already
// written when the line broke, or unanswered `timeout` after it was written (a paused or
// overloaded Redis), gets an empty reply with `outcome_unknown()`, and so does every command
// written after it: Redis may have executed them, or may still. The
// connection is then closed, so nothing else goes to that Redis on it. The pipeline tries to
// connect again at most every `retry` (doubling up to `max_retry` while it keeps failing), so a
// dead Redis costs one refused connect per period, not one per command; commands submitted while
// an attempt is under way wait for it. `up()` says whether the last attempt worked. Each attempt
// runs on a thread of its own (redis::connector), so a Redis that does not answer never stalls
// the loop; after each (re)connect `on_connect` runs on that thread with the new connection,
// before any queued command (the engine loads its scripts there).
//
// Threading: submit() and up() from any thread. Callbacks run on the context's thread, in
// submission order; they may submit again (never wait there for another command's reply).
// stop() (and the destructor) from any thread when the pipeline has a thread of its own; with a
// given context, on its thread or once no thread runs it (the app: after its loops ended).
// Commands still queued then get an empty reply.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace zena::redis {

class context_thread;

struct pipeline_options {
    endpoint where;
    std::chrono::milliseconds timeout{2000};  // connect, each write, and each reply after its command's write
    std::chrono::milliseconds retry{100};
    std::chrono::milliseconds max_retry{2000};
    // On the connecting thread after each connect; false (with `error` set) drops the connection.
    std::function<bool(connection&, std::string& error)> on_connect;
    std::string name = "redis";  // in log lines
    // Where the pipeline runs; null: on a thread of its own.
    boost::asio::io_context* context = nullptr;
};

class pipeline {
public:
    using args = std::vector<std::string>;
    // An empty reply: not sent (nothing reached Redis), or sent and not answered
    // (reply::outcome_unknown(): Redis may have executed it).
    using callback = std::function<void(reply)>;

    explicit pipeline(pipeline_options options);
    ~pipeline();
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    // Stops now (the destructor does it too; with a thread of its own, joins it); what is still
    // queued or due gets an empty reply. A command submitted after it is never sent: its callback
    // never runs.
    void stop();

    void submit(const args& command, callback done);
    // Several commands, written one after the other with nothing between them.
    void submit(const std::vector<args>& commands, std::vector<callback> done);
    // The same, encoded by the caller (command_writer): a hot path builds its command in one
    // string, on its own thread, instead of a string per argument.
    void submit_encoded(std::string command, callback done);
    void submit_encoded(std::vector<std::string> commands, std::vector<callback> done);

    bool up() const;
    // The last connection error, for /readyz and the logs.
    std::string last_error() const;

    struct state;

private:
    std::unique_ptr<context_thread> own_;  // with no context given; outlives state_'s use of it
    std::shared_ptr<state> state_;
};

}  // namespace zena::redis
