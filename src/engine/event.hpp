#pragma once
// What the engine carries: an event as published (encoded once), a channel's position, and an
// event as a channel's history keeps it.
//
// Threading: value types; an event is immutable once published and shared by every thread that
// delivers it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ws/outbound.hpp"

namespace zena::engine {

// Where a channel stands: `epoch` names one unbroken life of its history (it changes when the
// history is lost: a restart of the memory engine, a Redis that lost its data), `seq` is the
// last stored event's number, from 1; 0 before the first.
struct position {
    std::string epoch;
    std::uint64_t seq = 0;

    friend bool operator==(const position&, const position&) = default;
};

// One event as the API accepted it: checked against the catalog.
struct event {
    std::string type;
    std::string payload;  // minified JSON object
    // Its delivery class and latest key, and the frame of an announcement to everyone (which
    // travels on no channel; null otherwise). An event on a channel is framed per channel, with
    // its position (channel_message), once per publish.
    ws::outbound message;
};

// `e` as the connections of `channel` get it: {"type","payload","channel"} and, at a stored
// position (`at.epoch` not empty), "epoch" and "seq"; the event's delivery class and key.
ws::outbound channel_message(const event& e, std::string_view channel, const position& at);

// A stored event's frame and position, as an append answers them.
struct appended {
    position at;
    ws::outbound message;
};

// How much of a channel's history is kept: the newest max_events, none older than max_age.
struct history_limits {
    std::size_t max_events = 1000;
    std::chrono::milliseconds max_age = std::chrono::hours(24);
};

// An event as a channel's history holds it.
struct stored_event {
    std::uint64_t seq = 0;
    std::int64_t published_ms = 0;  // the engine's clock when it was appended (Unix ms)
    // The event as published, shared (an event published to many channels is stored once): its
    // type and payload answer the history API without parsing a frame; a later latest event
    // with the same key replaces this one in the history (compaction).
    std::shared_ptr<const engine::event> event;
    // The frame this channel's connections got (channel, epoch and seq in it), built once at the
    // append: what a resuming connection is handed.
    ws::outbound message;
};

// What a read of a channel's history finds.
struct history_page {
    position top;  // the channel's position now
    // The events after the position read from were all still kept, in the same epoch: `events`
    // is exactly what was stored since (less what compaction replaced). False: some were lost
    // (too old, too many, another epoch); `events` holds what is kept.
    bool recovered = false;
    std::vector<stored_event> events;  // oldest first, at most the limit asked for
};

}  // namespace zena::engine
