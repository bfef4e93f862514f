#pragma once
// One WebSocket connection's transport after the upgrade: our own frame layer straight over the
// socket (Beast reads the HTTP request; it does not carry the frames). It reads client frames
// through frame_reader, answers pings and closes, and owns the bounded send queue.
//
// Writing, the hot path: a queued message is a shared_frame, the bytes built once for
// every connection. Nothing is written when a message is queued. The connection joins its
// thread's flush_queue, and at the end of the event-loop turn every connection that has frames
// writes all of them with one system call: sendmsg, a gather of the shared buffers with no copy
// (send for a lone frame). Only when the kernel's buffer is full does a connection wait for the
// socket to drain. Over TLS the frames of one flush are copied into one buffer and written with
// one TLS write.
//
// Reading: an idle plain connection holds no read buffer. It waits for readability, then reads
// into a per-thread buffer; only an incomplete frame is kept. Every client frame takes a token of
// the connection's frame budget, and a fragmented message must end in time (limits.budget): past
// either, close 1008, counted. Each ping is answered with its own pong. Once the connection has
// queued its own close, it reads only frame headers, skipping payloads unread, until the client's
// close frame (the TCP connection is then dropped) or k_max_read_after_close bytes (it then reads
// nothing more); limits.close_timeout after its close, the TCP connection goes in any case.
//
// When behind: a latest-class frame replaces a waiting one with the same key, an ephemeral one
// is dropped while frames wait, and an ordered one that would take the queued bytes past
// limits.send_queue_max_bytes is refused with queued::full (the owner then says it fell behind
// and closes). A publisher never waits.
//
// Threading: lives on its worker's thread; every method runs there. Owned by its pending
// asynchronous operations, its place in the flush queue and whoever holds it (the hub). The
// end of the connection (on_end) is always reported from a handler of its own, never from
// inside a call made to it.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "observability/metrics.hpp"
#include "ws/asio.hpp"
#include "ws/frame_reader.hpp"
#include "ws/outbound.hpp"
#include "ws/send_ring.hpp"

namespace zena::ws {

// What a connection runs on once upgraded: a plain socket, or TLS (server.tls_cert_file). The
// plain socket is bound to its thread's io_context directly (no type-erased executor): smaller
// in itself and in each operation on it, which matters for idle connections.
using plain_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
// A TLS connection's stream and its buffers: the bytes of the write in flight, and the read
// buffer (a plain connection reads into a per-thread buffer and needs neither).
struct tls_transport {
    tls_stream stream;
    std::string out;
    std::vector<char> in;
    std::size_t frames_out = 0;  // frames in the write in flight
};
using transport = std::variant<plain_socket, std::unique_ptr<tls_transport>>;

class endpoint;

// Room inside a connection for the one asynchronous operation it always has outstanding (the
// wait for readability). Asio allocates each operation through its handler's allocator; with
// this one an idle connection's wait lives in the connection instead of a block of its own on
// the heap (about 600 bytes, as Asio recycles blocks of any earlier operation's size). Larger
// requests, more strictly aligned ones, or a second one at once, go to the heap.
class handler_slot {
public:
    // What a wait's operation on a plain_socket takes with this Boost (measured: 104).
    static constexpr std::size_t k_bytes = 104;
    // Asio's operations hold pointers and integers. Aligned to 8, not 16: the connection that
    // holds the slot needs no padding to 16 either.
    static constexpr std::size_t k_align = 8;

    void* allocate(std::size_t bytes, std::size_t align) {
        if (!in_use_ && bytes <= k_bytes && align <= k_align) {
            in_use_ = true;
            return storage_;
        }
        return ::operator new(bytes);
    }
    void deallocate(void* p) {
        if (p == static_cast<void*>(storage_)) {
            in_use_ = false;
        } else {
            ::operator delete(p);
        }
    }

private:
    alignas(k_align) unsigned char storage_[k_bytes];
    bool in_use_ = false;
};

template <typename T>
class slot_allocator {
public:
    using value_type = T;
    explicit slot_allocator(handler_slot& slot) noexcept : slot_(&slot) {}
    template <typename U>
    slot_allocator(const slot_allocator<U>& other) noexcept
        : slot_(other.slot()) {}  // NOLINT(google-explicit-constructor)
    T* allocate(std::size_t n) {
        static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "the heap fallback is plain operator new");
        return static_cast<T*>(slot_->allocate(n * sizeof(T), alignof(T)));
    }
    void deallocate(T* p, std::size_t) noexcept { slot_->deallocate(p); }
    handler_slot* slot() const noexcept { return slot_; }
    friend bool operator==(const slot_allocator& a, const slot_allocator& b) noexcept { return a.slot_ == b.slot_; }
    friend bool operator!=(const slot_allocator& a, const slot_allocator& b) noexcept { return a.slot_ != b.slot_; }

private:
    handler_slot* slot_;
};

// A write that is not a WebSocket connection's (an HTTP session's answers) handed to the turn's
// flush, so that it reaches the kernel in the same io_uring submission as the frames instead of
// costing a system call of its own (docs/architecture.md, "API answers in the flush").
class ring_writer {
public:
    // Puts the write into `slot` (iovecs whose bytes stay put until ring_written) and returns
    // the socket to write it to.
    virtual int stage_write(write_slot& slot) = 0;
    // What the kernel answered, as send_ring::result: the bytes it took, -errno, or
    // send_ring::k_not_submitted (the ring broke first). The rest is the writer's to write.
    virtual void ring_written(long result) = 0;

protected:
    ring_writer() = default;
    ~ring_writer() = default;
    ring_writer(const ring_writer&) = default;
    ring_writer& operator=(const ring_writer&) = default;
};

// The connections of one thread with frames to write. The thread's loop (net::worker::run)
// calls run() at the end of each turn, once the handlers that were ready have all run: every
// frame queued during the turn, from every publish, goes out in one write per connection.
class flush_queue {
public:
    // Writes through `ring` from now on (nullptr: one system call per connection). The ring
    // outlives the queue's runs.
    void use(send_ring* ring) { ring_ = ring; }
    // True while the queue writes through its ring: only then does it take a ring_writer.
    bool batches() const { return ring_ != nullptr && !ring_->broken(); }
    void add(std::shared_ptr<endpoint> connection) { pending_.push_back(std::move(connection)); }
    // Written in the next run(), before the connections' frames (an answer is small, and its
    // publisher waits for it); only while batches().
    void add(std::shared_ptr<ring_writer> writer) { writers_.push_back(std::move(writer)); }
    void frame_queued() { ++frames_; }
    void run();
    // Writes only the writers now (the connections wait for run()).
    void run_writers();
    bool has_writers() const { return !writers_.empty(); }
    // Connections with frames waiting for the next run(), and the frames queued since the last.
    std::size_t size() const { return pending_.size(); }
    // Nothing waits for the next run(): neither a connection nor another writer.
    bool empty() const { return pending_.empty() && writers_.empty(); }
    std::size_t frames() const { return frames_; }

private:
    // run(), or run_writers() when `connections` is false.
    void write(bool connections);

    send_ring* ring_ = nullptr;
    std::vector<endpoint*> later_;  // a run's connections to flush after its batches (held by running_)
    std::size_t frames_ = 0;
    std::vector<std::shared_ptr<endpoint>> pending_;
    std::vector<std::shared_ptr<endpoint>> running_;
    std::vector<std::shared_ptr<ring_writer>> writers_;
    std::vector<std::shared_ptr<ring_writer>> writers_running_;
};

class endpoint : public std::enable_shared_from_this<endpoint>, private frame_reader::handler {
public:
    // The same for every connection of a server (net::services::endpoint_limits): each
    // connection holds a reference, not a copy.
    struct limits {
        std::size_t max_message_bytes;            // larger client messages close with 1009
        std::size_t send_queue_max_bytes;         // queued wire bytes before queued::full
        std::chrono::milliseconds close_timeout;  // a close handshake not finished by then drops the TCP
        // Frames per second and burst, and the time a fragmented message may take; past either
        // the connection is closed with 1008 and counted.
        frame_reader::budget budget{};
        observability::metrics* metrics = nullptr;  // where those closes are counted; none: not counted
    };
    // After its own close, a connection reads at most this much more while it looks for the
    // client's close frame, skipping payloads unread; then it reads nothing more, and the close
    // timer drops the TCP connection. A client answers a close at once, with a few bytes; one
    // that goes on sending is in the middle of something (a large message, a burst), or hostile.
    static constexpr std::size_t k_max_read_after_close = 4 * 1024;
    struct options {
        const limits& shared;           // outlives the connection
        bool deflate = false;           // permessage-deflate was negotiated
        bool deflate_outgoing = false;  // and this connection gets compressed frames
    };

    enum class queued {
        yes,       // queued
        replaced,  // replaced a waiting frame with the same latest key
        dropped,   // ephemeral, and frames were waiting
        full,      // over the send budget: not queued
        refused,   // closing or closed: not queued
    };

    endpoint(transport&& stream, flush_queue& flusher, options opts);
    virtual ~endpoint();
    endpoint(const endpoint&) = delete;
    endpoint& operator=(const endpoint&) = delete;

    // Sends `response` (the 101 head) and starts reading. `already_read`: bytes the client sent
    // after its request, read with it; they are handled first.
    void start(std::string response, std::string_view already_read);

    queued enqueue(const outbound& message);
    // Drops the frames still waiting, queues `last` (if any) and a close frame; later messages are
    // refused. The TCP connection ends when the client answers, or after limits.close_timeout.
    void close(std::uint16_t code, std::string_view reason, shared_frame last = nullptr);
    // A ping, from the owner's heartbeat. It checks first that a message begun by a fragment
    // has not outlived limits.budget.message_timeout (a client that sent a first fragment and
    // then went silent is never read again): one that has fails the connection with 1008.
    void ping();
    // Drops the TCP connection now.
    void terminate();
    bool closing() const { return phase_ != phase::open; }
    // The send queue's storage, in entries: kept from one batch to the next while the connection
    // takes batches of frames, none once it drains a few (see on_drained).
    std::size_t queue_capacity() const { return queue_.capacity(); }

protected:
    // A whole client message (frame_reader::handler): text is valid UTF-8.
    void on_message(std::string_view data, bool text) override = 0;
    // A pong from the client (frame_reader::handler).
    void on_pong() override {}
    // Whether to answer a client's ping (the owner's rate limit may say no).
    virtual bool allow_ping() { return true; }
    // The connection is over; called once.
    virtual void on_end() = 0;
    // Every queued frame has reached the socket (from a handler of the connection's own, never
    // from inside enqueue): an owner that holds back frames (a replay) may queue more. Called
    // only while the owner wants it (want_drained): a fan-out drains every connection's queue at
    // each flush, and the call would cost each of them a look at its owner's state.
    virtual void on_queue_drained() {}
    void want_drained(bool on) { drain_wanted_ = on; }
    // Wire bytes queued and not yet written.
    std::size_t queued_bytes() const { return queued_bytes_; }

private:
    friend class flush_queue;  // calls flush(), or stage() and written() through its ring
    struct entry {
        shared_frame frame;
        std::uint64_t latest_key;
        delivery_class delivery;
    };

    // frame_reader::handler
    void on_ping(std::string_view payload) override;
    void on_close(std::optional<std::uint16_t> code, std::string_view reason) override;

    // The close lifecycle: open; our close frame queued (closing), and then either waiting for
    // the client's (close_sent) or not (closing_then_end: a failed connection, or an answer to
    // the client's close); ended once the TCP connection is dropped.
    enum class phase : std::uint8_t { open, closing, closing_then_end, close_sent, ended };
    bool ended() const { return phase_ == phase::ended; }

    bool plain() const { return std::holds_alternative<plain_socket>(stream_); }
    plain_socket& socket() { return std::get<plain_socket>(stream_); }
    tls_transport& tls() { return *std::get<std::unique_ptr<tls_transport>>(stream_); }
    const tls_transport& tls() const { return *std::get<std::unique_ptr<tls_transport>>(stream_); }
    // The executor of the connection's thread.
    boost::asio::any_io_executor executor();
    // What this connection writes for a frame: compressed when it negotiated permessage-deflate.
    std::string_view bytes_of(const frame& f) const { return deflate_outgoing_ ? f.deflated_wire() : f.wire(); }
    std::string_view bytes_of(const entry& e) const { return bytes_of(*e.frame); }
    // Index of the first frame not yet handed to the socket: the ones before it are being written.
    std::size_t waiting_from() const;
    // Forgets the frames not yet handed to the socket.
    void drop_waiting();
    void push(shared_frame frame, delivery_class delivery, std::uint64_t key);
    void queue_close(std::string_view payload, bool then_end);
    void schedule_flush();
    void flush();
    void write_plain();
    // Puts the next write of the queue together in `slot` (plain transport).
    void prepare(write_slot& slot);
    // The flush's part through the ring: a write put together in `slot` (staged), nothing to
    // do (waiting for its socket, ended), or a flush() to make after the batches (TLS, or
    // nothing queued: the drained queue is reported there).
    enum class staging : std::uint8_t { staged, none, later };
    staging stage(write_slot& slot);
    // A staged write's result (what send(2) returned, -errno, or send_ring::k_not_submitted):
    // first the bytes taken are counted, for every connection of the batch; then each goes on
    // (writes the rest, waits for its socket, or ends), which may call its owner.
    void count_written(long result);
    void written(long result);
    // What a write's result means for the connection: true to write on.
    bool after_write(long result);
    void write_tls();
    // `n` bytes of the queue (the raw head first) reached the socket.
    void advance(std::size_t n);
    void on_drained();
    void do_read();
    void on_readable(boost::system::error_code ec);
    // Hands bytes to the reader; false when reading is over.
    bool consume(std::string_view data);
    // The reader failed (a broken protocol or a passed limit): close with its code, or, once our
    // close is out, drop the TCP connection.
    void on_read_failed();

    // An idle connection is mostly this object: the fields are ordered to leave no padding.
    transport stream_;
    flush_queue& flusher_;
    const limits& limits_;
    frame_reader reader_;
    std::unique_ptr<std::string> raw_out_;  // bytes before any frame: the 101 response, until written
    std::vector<entry> queue_;              // [head_, end) not yet written
    std::size_t head_ = 0;
    std::size_t offset_ = 0;        // bytes of queue_[head_] (or raw_out_) already written
    std::size_t queued_bytes_ = 0;  // wire bytes in queue_ from head_
    handler_slot read_slot_;        // the read wait's operation
    std::unique_ptr<boost::asio::steady_timer> close_timer_;
    bool deflate_outgoing_;  // permessage-deflate: this connection gets compressed frames
    bool flush_scheduled_ = false;
    bool writing_ = false;       // waiting for the socket (plain) or a TLS write in flight
    bool drain_wanted_ = false;  // on_queue_drained is called
    phase phase_ = phase::open;
    std::uint16_t last_batch_ = 0;  // frames the last drained queue held: the next one's first capacity
};

}  // namespace zena::ws
