#pragma once
// One Pub/Sub connection to Redis, subscribed to the channels its owner asks for: sharded Pub/Sub
// (SSUBSCRIBE, Redis 7) when the server offers it, classic SUBSCRIBE otherwise. It runs on an
// io_context's thread (an event loop of the server, `subscriber_options::context`, or a thread
// of its own); each attempt to connect runs on a thread of its own (redis::connector), so a Redis
// that does not answer never stalls the loop. Built on redis::connection, the project's one
// Redis client, and redis::line.
//
// - subscribe(channel, ready): the channel is wanted; `ready(true)` runs once Redis has confirmed
//   the subscription (at once when it already is), so that its owner reads a channel's position
//   only once nothing published after the read can pass it by; `ready(false)` when the line is
//   down meanwhile (the owner answers "unavailable" rather than wait). unsubscribe(channel): no longer.
//   Requests are written in batches, never one round trip per channel.
// - Each message of a wanted channel goes to `on_message`, in the order Redis sent them; after
//   each burst read from the line, `on_burst` (the owner hands a burst to its hubs at once).
// - When the line breaks the thread connects again (backoff from `retry` to `max_retry`) and
//   subscribes every wanted channel again. `on_down` runs when the line is lost (or the first
//   connect fails), `on_up` once every wanted channel is subscribed again: what was published
//   in between was not received, and the owner recovers it (engine/redis: from history).
// - post(task): runs `task` on the subscriber's thread (the owner's continuations, so its
//   per-channel state needs no lock); `on_tick` runs every `tick` there too.
//
// Threading: subscribe, unsubscribe, post and up from any thread; every callback runs on the
// subscriber's thread: the context's. stop() (and the destructor) from any thread when the
// subscriber has a thread of its own; with a given context, on its thread or once no thread runs
// it (the app: after its loops ended).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "redis/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace zena::redis {

class context_thread;

struct subscriber_options {
    endpoint where;
    std::chrono::milliseconds timeout{2000};
    std::chrono::milliseconds retry{100};
    std::chrono::milliseconds max_retry{2000};
    std::chrono::milliseconds tick{100};
    std::function<void(std::string_view channel, std::string_view message)> on_message;
    std::function<void()> on_burst;
    std::function<void()> on_up;
    std::function<void()> on_down;
    std::function<void()> on_tick;
    std::string name = "redis pubsub";
    // Where the subscriber runs; null: on a thread of its own.
    boost::asio::io_context* context = nullptr;
};

class subscriber {
public:
    explicit subscriber(subscriber_options options);
    ~subscriber();
    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;
    // Stops now (the destructor does it too; with a thread of its own, joins it): after it no
    // callback runs.
    // An owner whose callbacks reach other objects stops every thread first, then destroys.
    void stop();

    void subscribe(std::string channel, std::function<void(bool)> ready = {});
    void unsubscribe(std::string channel);
    void post(std::function<void()> task);

    // Connected, and every wanted channel subscribed.
    bool up() const;
    // Whether the server offers sharded Pub/Sub (known once connected; SPUBLISH goes with it).
    bool sharded() const;

    struct state;

private:
    std::unique_ptr<context_thread> own_;  // with no context given; outlives state_'s use of it
    std::shared_ptr<state> state_;
};

}  // namespace zena::redis
