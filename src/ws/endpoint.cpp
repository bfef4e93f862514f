#include "ws/endpoint.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/bind_allocator.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>

#include "observability/log.hpp"
#include "ws/close_codes.hpp"

namespace zena::ws {

namespace asio = boost::asio;

namespace {

// Bytes read per system call; reads per readiness before yielding to other connections.
constexpr std::size_t k_read_bytes = 64 * 1024;
constexpr int k_reads_per_wakeup = 4;
constexpr std::size_t k_tls_read_bytes = 16 * 1024;
// A queue's first storage: room for a few frames, so a burst grows it once or twice, not at
// every frame. A drained queue releases it unless it took a batch (on_drained), so a connection
// that has received nothing, or only a few frames since its last batch, holds no queue. Three
// entries are 96 bytes: one of jemalloc's small size classes, which it keeps in a per-thread
// cache (the release binary; docs/decisions.md), and inside glibc's fast bins (chunks up to 128
// bytes) in the sanitizer builds. A fan-out of lone publishes releases and takes one per
// connection at every publish; under glibc four (a 144-byte chunk) would cost each a trip through
// the bins that merge free neighbours.
constexpr std::size_t k_first_queue_capacity = 3;
// The most storage a connection holds ready for its next batch, 128 entries (4 KiB): the room a
// new queue starts with, and the storage a drained one may keep (on_drained).
constexpr std::size_t k_max_ready_capacity = 128;
// A drained queue of this many frames or more keeps its storage for the next batch.
constexpr std::size_t k_keep_batch = 8;
char* thread_read_buffer() {
    thread_local std::array<char, k_read_bytes> buffer;
    return buffer.data();
}
// The write put together when a connection writes on its own (not through the flush's ring).
write_slot& thread_write_slot() {
    thread_local write_slot slot;
    return slot;
}

const shared_frame& ping_frame() {
    static const auto frame = frame::make(opcode::ping, {});
    return frame;
}

}  // namespace

void flush_queue::run() { write(true); }

void flush_queue::run_writers() { write(false); }

void flush_queue::write(bool connections) {
    if (connections) {
        running_.swap(pending_);
        frames_ = 0;
    }
    writers_running_.swap(writers_);
    if (ring_ == nullptr || ring_->broken()) {
        // A writer is only added while the ring works; it broke since: the writers write alone.
        for (auto& writer : writers_running_) writer->ring_written(send_ring::k_not_submitted);
        writers_running_.clear();
        for (auto& connection : running_) connection->flush();
        running_.clear();
        return;
    }
    // Each connection's write is put together in a slot, and the kernel gets them k_batch at a
    // time. No owner's callback may run while a connection of the batch has bytes in the kernel
    // it has not counted (a callback may reach another connection: close it, replace its
    // frames), so the answers are counted first and acted on after, and connections with no
    // write to stage (TLS, nothing queued) are flushed after the batches. The other writers
    // (HTTP answers) go first, and hear their answers with the connections' callbacks.
    struct staged_write {
        endpoint* connection;  // or
        ring_writer* writer;
    };
    std::array<staged_write, send_ring::k_batch> staged{};
    unsigned n = 0;
    const auto complete = [&] {
        const unsigned done = ring_->submit_and_wait();
        for (unsigned i = 0; i < done; ++i) {
            if (staged[i].connection != nullptr) staged[i].connection->count_written(ring_->result(i));
        }
        for (unsigned i = 0; i < done; ++i) {
            if (staged[i].connection != nullptr) {
                staged[i].connection->written(ring_->result(i));
            } else {
                staged[i].writer->ring_written(ring_->result(i));
            }
        }
        n = 0;
    };
    for (auto& writer : writers_running_) {
        if (ring_->broken()) {  // it broke in this run's last batch, whose answers are all taken
            writer->ring_written(send_ring::k_not_submitted);
            continue;
        }
        ring_->queue(n, writer->stage_write(ring_->slot(n)));
        staged[n++] = {nullptr, writer.get()};
        if (n == send_ring::k_batch) complete();
    }
    for (auto& connection : running_) {
        if (ring_->broken()) {
            connection->flush();
            continue;
        }
        switch (connection->stage(ring_->slot(n))) {
            case endpoint::staging::staged:
                ring_->queue(n, connection->socket().native_handle());
                staged[n++] = {connection.get(), nullptr};
                if (n == send_ring::k_batch) complete();
                break;
            case endpoint::staging::later: later_.push_back(connection.get()); break;
            case endpoint::staging::none: break;
        }
    }
    if (n > 0) complete();
    for (auto* connection : later_) connection->flush();
    later_.clear();
    running_.clear();
    writers_running_.clear();
}

endpoint::endpoint(transport&& stream, flush_queue& flusher, options opts)
    : stream_(std::move(stream)),
      flusher_(flusher),
      limits_(opts.shared),
      reader_(opts.shared.max_message_bytes, opts.deflate, opts.shared.budget),
      deflate_outgoing_(opts.deflate_outgoing) {}

endpoint::~endpoint() = default;

asio::any_io_executor endpoint::executor() {
    if (plain()) return socket().get_executor();
    return tls().stream.get_executor();
}

void endpoint::start(std::string response, std::string_view already_read) {
    raw_out_ = std::make_unique<std::string>(std::move(response));
    if (!plain()) tls().in.resize(k_tls_read_bytes);
    schedule_flush();
    if (!already_read.empty() && !consume(already_read)) return;
    do_read();
}

// ---- the send queue

std::size_t endpoint::waiting_from() const {
    if (!plain()) return head_ + tls().frames_out;
    return head_ + (offset_ > 0 && !raw_out_ ? 1 : 0);
}

endpoint::queued endpoint::enqueue(const outbound& message) {
    if (phase_ != phase::open) return queued::refused;
    const auto from = waiting_from();
    if (message.delivery == delivery_class::latest) {
        for (auto i = from; i < queue_.size(); ++i) {
            auto& e = queue_[i];
            if (e.delivery == delivery_class::latest && e.latest_key == message.latest_key) {
                // Only the newest is worth sending; it must fit the budget as a new frame would.
                // The older one leaves the queue and the newer goes at its end, not in the older
                // one's place: the frames queued between them were published before it, and a
                // channel's positions must reach the client in order.
                const auto rest = queued_bytes_ - bytes_of(e).size();
                if (rest + bytes_of(*message.frame).size() > limits_.send_queue_max_bytes) return queued::full;
                queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
                queued_bytes_ = rest;
                push(message.frame, message.delivery, message.latest_key);
                return queued::replaced;
            }
        }
    } else if (message.delivery == delivery_class::ephemeral && writing_ && queue_.size() > from) {
        // Behind: the socket has not taken the last write and frames wait. Frames queued in this
        // turn to a connection whose socket keeps up all go: two typing relays in one turn are
        // not a sign of a slow client.
        return queued::dropped;
    }
    const auto size = bytes_of(*message.frame).size();
    if (queued_bytes_ + size > limits_.send_queue_max_bytes) {
        // An ephemeral frame is never worth a slow-consumer close.
        return message.delivery == delivery_class::ephemeral ? queued::dropped : queued::full;
    }
    push(message.frame, message.delivery, message.latest_key);
    return queued::yes;
}

void endpoint::push(shared_frame frame, delivery_class delivery, std::uint64_t key) {
    static_assert(sizeof(entry) * k_first_queue_capacity <= 120, "a queue's first storage fits a fast-bin chunk");
    if (queue_.capacity() == 0) queue_.reserve(std::max<std::size_t>(k_first_queue_capacity, last_batch_));
    queue_.push_back({std::move(frame), key, delivery});
    queued_bytes_ += bytes_of(queue_.back()).size();
    schedule_flush();
    // It counts toward the turn's batch when the turn's flush will write it (a connection
    // waiting for its socket writes from its own wait).
    if (flush_scheduled_) flusher_.frame_queued();
}

void endpoint::drop_waiting() {
    const auto from = waiting_from();
    for (auto i = from; i < queue_.size(); ++i) queued_bytes_ -= bytes_of(queue_[i]).size();
    queue_.resize(from);
}

void endpoint::ping() {
    if (phase_ != phase::open) return;
    // The heartbeat is the one visit a silent connection gets: its half message ends here.
    if (reader_.message_overdue(observability::monotonic_ms())) {
        reader_.fail_overdue_message();
        return on_read_failed();
    }
    push(ping_frame(), delivery_class::ordered, 0);
}

void endpoint::close(std::uint16_t code, std::string_view reason, shared_frame last) {
    if (phase_ != phase::open) return;
    drop_waiting();
    if (last) push(std::move(last), delivery_class::ordered, 0);
    queue_close(close_payload(code, reason), false);
}

void endpoint::queue_close(std::string_view payload, bool then_end) {
    phase_ = then_end ? phase::closing_then_end : phase::closing;
    // What the client sends from now on is only looked through for its close frame (a reader
    // that failed or read a close reads nothing more anyway).
    reader_.discard(k_max_read_after_close);
    push(frame::make(opcode::close, payload), delivery_class::ordered, 0);
    close_timer_ = std::make_unique<asio::steady_timer>(executor());
    close_timer_->expires_after(limits_.close_timeout);
    close_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->terminate();
    });
}

// ---- writing

void endpoint::schedule_flush() {
    if (flush_scheduled_ || writing_ || phase_ == phase::ended) return;
    flush_scheduled_ = true;
    flusher_.add(shared_from_this());
}

void endpoint::flush() {
    flush_scheduled_ = false;
    if (writing_ || phase_ == phase::ended) return;
    if (plain()) return write_plain();
    write_tls();
}

void endpoint::prepare(write_slot& slot) {
    slot.count = 0;
    std::size_t gathered = 0;
    bool last_gathered = false;
    // Adds a piece to the write: copied after the previous small one when it is small and there
    // is room, else an iovec of its own. False when the write is full.
    const auto add = [&](std::string_view bytes) {
        const bool small = bytes.size() <= write_slot::k_gather_frame_max;
        if (small && gathered + bytes.size() <= write_slot::k_gather_bytes) {
            if (!last_gathered) {
                if (slot.count == write_slot::k_max_iov) return false;
                slot.iov[slot.count++] = {slot.buffer.data() + gathered, 0};
                last_gathered = true;
            }
            std::memcpy(slot.buffer.data() + gathered, bytes.data(), bytes.size());
            gathered += bytes.size();
            slot.iov[slot.count - 1].iov_len += bytes.size();
            return true;
        }
        if (small || slot.count == write_slot::k_max_iov) return false;  // the buffer or the iovecs are full
        slot.iov[slot.count++] = {const_cast<char*>(bytes.data()), bytes.size()};
        last_gathered = false;
        return true;
    };
    // A lone frame (a lone publish, a targeted one) is written from where it is.
    if (!raw_out_ && queue_.size() - head_ == 1) {
        const auto bytes = bytes_of(queue_[head_]).substr(offset_);
        slot.iov[slot.count++] = {const_cast<char*>(bytes.data()), bytes.size()};
        return;
    }
    std::size_t skip = offset_;
    if (raw_out_) {
        add(std::string_view(*raw_out_).substr(skip));
        skip = 0;
    }
    for (auto i = head_; i < queue_.size(); ++i) {
        if (!add(bytes_of(queue_[i]).substr(i == head_ ? skip : 0))) break;
    }
}

endpoint::staging endpoint::stage(write_slot& slot) {
    flush_scheduled_ = false;
    if (writing_ || phase_ == phase::ended) return staging::none;
    if (!plain() || (!raw_out_ && head_ == queue_.size())) return staging::later;
    prepare(slot);
    return staging::staged;
}

void endpoint::count_written(long result) {
    if (result >= 0 && !ended()) advance(static_cast<std::size_t>(result));
}

void endpoint::written(long result) {
    if (ended()) return;
    // What was taken is counted (count_written); the rest, if any, goes as without the ring,
    // and a drained queue is reported there.
    if (result >= 0 || result == send_ring::k_not_submitted || after_write(result)) write_plain();
}

bool endpoint::after_write(long result) {
    if (result == -EINTR) return true;
    if (result == -EAGAIN || result == -EWOULDBLOCK) {
        // The kernel's buffer is full: wait until the client reads.
        writing_ = true;
        socket().async_wait(asio::socket_base::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
            self->writing_ = false;
            if (ec || self->ended()) return;
            self->write_plain();
        });
        return false;
    }
    if (result < 0) {
        terminate();  // reset or gone
        return false;
    }
    advance(static_cast<std::size_t>(result));
    return !ended();
}

void endpoint::write_plain() {
    const int fd = socket().native_handle();
    auto& slot = thread_write_slot();
    while (raw_out_ || head_ < queue_.size()) {
        prepare(slot);
        // One piece (a lone frame, a write of small frames): send(), which spares the kernel the
        // message header and the iovec array that sendmsg copies in.
        ssize_t n = 0;
        if (slot.count == 1) {
            n = ::send(fd, slot.iov[0].iov_base, slot.iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            msghdr msg{};
            msg.msg_iov = slot.iov.data();
            msg.msg_iovlen = slot.count;
            n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (!after_write(n < 0 ? -errno : n)) return;
    }
    on_drained();
}

void endpoint::write_tls() {
    if (!raw_out_ && head_ == queue_.size()) return on_drained();
    auto& t = tls();
    t.out.clear();
    if (raw_out_) {
        t.out = std::move(*raw_out_);
        raw_out_.reset();
    }
    t.frames_out = queue_.size() - head_;
    for (auto i = head_; i < queue_.size(); ++i) t.out += bytes_of(queue_[i]);
    writing_ = true;
    asio::async_write(t.stream, asio::buffer(t.out),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                          self->writing_ = false;
                          if (self->ended()) return;
                          if (ec) return self->terminate();
                          auto& done = self->tls();
                          const auto frames = std::exchange(done.frames_out, 0);
                          done.out.clear();
                          for (std::size_t i = 0; i < frames && !self->ended(); ++i) {
                              self->advance(self->bytes_of(self->queue_[self->head_]).size());
                          }
                          if (!self->ended()) self->write_tls();
                      });
}

void endpoint::advance(std::size_t n) {
    if (raw_out_) {
        const auto rest = raw_out_->size() - offset_;
        if (n < rest) {
            offset_ += n;
            return;
        }
        n -= rest;
        offset_ = 0;
        raw_out_.reset();
    }
    while (head_ < queue_.size()) {
        auto& e = queue_[head_];
        const auto size = bytes_of(e).size();
        const auto rest = size - offset_;
        if (n < rest) {
            offset_ += n;
            return;
        }
        n -= rest;
        offset_ = 0;
        queued_bytes_ -= size;
        const bool was_close = e.frame->op() == opcode::close;
        e.frame.reset();
        ++head_;
        if (was_close) {
            // The handshake is done when the client's close came first; a failed connection
            // waits for nothing.
            if (phase_ == phase::closing_then_end) return terminate();
            phase_ = phase::close_sent;
        }
    }
}

void endpoint::on_drained() {
    // A connection that just took a batch of n frames will likely take about as many next: its
    // next queue starts there instead of growing from k_first_queue_capacity.
    last_batch_ = static_cast<std::uint16_t>(std::min<std::size_t>(queue_.size(), k_max_ready_capacity));
    // A connection that takes batches (a fan-out's turns) keeps its queue's storage for the next
    // one: giving it back and growing it again at every turn took 4-12 % of a fan-out's server
    // time (docs/architecture.md). A drain of fewer frames (a ping, a targeted event) gives it
    // back, and so does one whose storage grew past k_max_ready_capacity: a connection holds what
    // a busy spell left until its next small drain, normally the heartbeat's ping.
    const bool keep = queue_.size() >= k_keep_batch && queue_.capacity() <= k_max_ready_capacity;
    queue_.clear();
    head_ = 0;
    offset_ = 0;
    if (!keep) std::vector<entry>{}.swap(queue_);
    if (phase_ == phase::open && drain_wanted_) on_queue_drained();
}

// ---- reading

void endpoint::do_read() {
    if (ended()) return;
    if (plain()) {
        socket().async_wait(
            asio::socket_base::wait_read,
            asio::bind_allocator(slot_allocator<void>(read_slot_),
                                 [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); }));
        return;
    }
    auto& t = tls();
    t.stream.async_read_some(asio::buffer(t.in),
                             [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                 if (self->ended()) return;
                                 if (ec) return self->terminate();
                                 if (self->consume(std::string_view(self->tls().in.data(), n))) self->do_read();
                             });
}

void endpoint::on_readable(boost::system::error_code ec) {
    if (ended()) return;
    if (ec) return terminate();
    const int fd = socket().native_handle();
    char* buffer = thread_read_buffer();
    for (int i = 0; i < k_reads_per_wakeup; ++i) {
        const auto n = ::recv(fd, buffer, k_read_bytes, MSG_DONTWAIT);
        if (n > 0) {
            if (!consume(std::string_view(buffer, static_cast<std::size_t>(n)))) return;
            if (static_cast<std::size_t>(n) < k_read_bytes) break;
            continue;
        }
        if (n == 0) return terminate();  // the client closed the TCP connection
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return terminate();
    }
    do_read();
}

bool endpoint::consume(std::string_view data) {
    const auto status = reader_.feed(data, *this, observability::monotonic_ms());
    if (ended()) return false;
    switch (status) {
        case frame_reader::status::more: return true;
        case frame_reader::status::closed: return false;  // on_close answered it
        case frame_reader::status::failed: break;
    }
    on_read_failed();
    return false;
}

void endpoint::on_read_failed() {
    // Past the allowance after our own close: reading stops here, so the client's bytes cost
    // nothing more, and the close timer drops the TCP connection. Dropping it now would reset a
    // connection with unread bytes, and a reset can destroy our close frame before the client
    // reads it (a client closed while it was sending would see 1006, not our code).
    if (reader_.failed_limit() == frame_reader::limit::after_close) return;
    // _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): the close code, then the TCP goes.
    switch (phase_) {
        case phase::open:
            if (auto* m = limits_.metrics) {
                switch (reader_.failed_limit()) {
                    case frame_reader::limit::frames: observability::metrics::add(m->frame_budget_closes); break;
                    case frame_reader::limit::message_timeout:
                        observability::metrics::add(m->message_timeout_closes);
                        break;
                    case frame_reader::limit::none:
                    case frame_reader::limit::after_close: break;
                }
            }
            drop_waiting();
            queue_close(close_payload(reader_.failure_code(), reader_.failure_reason()), true);
            break;
        case phase::closing: phase_ = phase::closing_then_end; break;
        case phase::close_sent: terminate(); break;
        case phase::closing_then_end:
        case phase::ended: break;
    }
}

void endpoint::on_ping(std::string_view payload) {
    if (phase_ != phase::open || !allow_ping()) return;
    // A pong for each ping, as Autobahn (case 2.10), Beast, uWebSockets and ws do, though RFC 6455
    // §5.5.3 would allow answering only the latest: the pings were paid for in the frame budget.
    const outbound pong{frame::make(opcode::pong, payload), delivery_class::ordered, 0};
    if (enqueue(pong) == queued::full) {
        // A client that pings without reading: the same end as any slow consumer.
        close(static_cast<std::uint16_t>(close_code::slow_consumer), "send queue full");
    }
}

void endpoint::on_close(std::optional<std::uint16_t> code, std::string_view) {
    switch (phase_) {
        case phase::close_sent: return terminate();  // it answers ours: the handshake is complete
        case phase::closing:                         // ours is on its way; the TCP goes once it is written
            phase_ = phase::closing_then_end;
            return;
        case phase::closing_then_end:
        case phase::ended: return;
        case phase::open: break;
    }
    // Echo the code (RFC 6455 §5.5.1), after what is already on the wire.
    drop_waiting();
    queue_close(code ? close_payload(*code, {}) : std::string{}, true);
}

void endpoint::terminate() {
    if (ended()) return;
    phase_ = phase::ended;
    boost::system::error_code ignored;
    const auto drop = [&ignored](auto& s) {
        s.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        s.close(ignored);
    };
    if (plain()) {
        drop(socket());
    } else {
        drop(tls().stream.next_layer().socket());
    }
    if (close_timer_) close_timer_->cancel();
    queue_.clear();
    head_ = 0;
    queued_bytes_ = 0;
    // Reported from a handler of its own: the caller may be iterating the hub.
    asio::post(executor(), [self = shared_from_this()] { self->on_end(); });
}

}  // namespace zena::ws
