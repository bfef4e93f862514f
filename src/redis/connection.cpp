#include "redis/connection.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <system_error>

#include "util/url.hpp"

namespace zena::redis {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
    return tv;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end && !text.empty();
}

}  // namespace

std::optional<endpoint> parse_url(std::string_view url) {
    constexpr std::string_view k_scheme = "redis://";
    if (!url.starts_with(k_scheme)) return std::nullopt;
    url.remove_prefix(k_scheme.size());
    endpoint out;
    const auto slash = url.find('/');
    auto authority = url.substr(0, slash);
    if (slash != std::string_view::npos) {
        const auto db = url.substr(slash + 1);
        if (!db.empty() && (!parse_number(db, out.db) || out.db < 0)) return std::nullopt;
    }
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const auto userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        auto user = util::percent_decode(userinfo.substr(0, colon), false);
        auto password = util::percent_decode(
            colon == std::string_view::npos ? std::string_view{} : userinfo.substr(colon + 1), false);
        if (!user || !password) return std::nullopt;
        out.username = std::move(*user);
        out.password = std::move(*password);
    }
    std::string_view host = authority;
    if (authority.starts_with('[')) {  // [::1]:6379
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        authority.remove_prefix(close + 1);
        if (!authority.empty() && !authority.starts_with(':')) return std::nullopt;
        if (!authority.empty() && !parse_number(authority.substr(1), out.port)) return std::nullopt;
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        if (!parse_number(authority.substr(colon + 1), out.port)) return std::nullopt;
    }
    if (host.empty() || out.port == 0) return std::nullopt;
    out.host = std::string{host};
    return out;
}

reply::reply(redisReply* r) : r_(r) {}

reply reply::unanswered() {
    reply out;
    out.outcome_unknown_ = true;
    return out;
}

void reply::deleter::operator()(redisReply* r) const { freeReplyObject(r); }

bool reply::ok() const { return r_ && r_->type != REDIS_REPLY_ERROR; }

std::string reply::error_text() const {
    if (!r_) return "no reply";
    if (r_->type == REDIS_REPLY_ERROR) return std::string{str()};
    return {};
}

std::string_view reply::str() const { return str_of(r_.get()); }
std::int64_t reply::integer() const { return r_ && r_->type == REDIS_REPLY_INTEGER ? r_->integer : 0; }
bool reply::is_array() const { return r_ && r_->type == REDIS_REPLY_ARRAY; }
bool reply::is_nil() const { return r_ && r_->type == REDIS_REPLY_NIL; }
std::size_t reply::size() const { return size_of(r_.get()); }
const redisReply* reply::element(std::size_t i) const { return element_of(r_.get(), i); }

std::string_view str_of(const redisReply* r) {
    if (!r) return {};
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
        return {r->str, r->len};
    }
    return {};
}

std::size_t size_of(const redisReply* r) { return r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0; }

const redisReply* element_of(const redisReply* r, std::size_t i) { return i < size_of(r) ? r->element[i] : nullptr; }

connection::connection(redisContext* context) : context_(context) {}

connection::~connection() { redisFree(context_); }

std::unique_ptr<connection> connection::open(const endpoint& where, std::chrono::milliseconds timeout,
                                             std::string& error) {
    redisContext* c = redisConnectWithTimeout(where.host.c_str(), where.port, to_timeval(timeout));
    if (!c) {
        error = "cannot allocate a Redis context";
        return nullptr;
    }
    std::unique_ptr<connection> out{new connection(c)};
    if (c->err) {
        error = c->errstr;
        return nullptr;
    }
    if (redisSetTimeout(c, to_timeval(timeout)) != REDIS_OK) {
        error = c->errstr;
        return nullptr;
    }
    (void)redisEnableKeepAlive(c);
    if (!where.password.empty()) {
        std::vector<std::string_view> auth{"AUTH"};
        if (!where.username.empty()) auth.emplace_back(where.username);
        auth.emplace_back(where.password);
        if (auto r = out->command(auth); !r.ok()) {
            error = "AUTH failed: " + (r.empty() ? out->error() : r.error_text());
            return nullptr;
        }
    }
    if (where.db != 0) {
        const auto db = std::to_string(where.db);
        const std::string_view select[] = {"SELECT", db};
        if (auto r = out->command(select); !r.ok()) {
            error = "SELECT failed: " + (r.empty() ? out->error() : r.error_text());
            return nullptr;
        }
    }
    return out;
}

command_writer::command_writer(std::size_t args, std::size_t reserve) {
    out_.reserve(reserve);
    out_ += '*';
    number(args);
}

void command_writer::number(std::size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out_.append(digits, end);
    out_ += "\r\n";
}

command_writer& command_writer::arg(std::span<const std::string_view> parts) {
    std::size_t size = 0;
    for (const auto p : parts) size += p.size();
    out_ += '$';
    number(size);
    for (const auto p : parts) out_ += p;
    out_ += "\r\n";
    return *this;
}

std::string encode(std::span<const std::string_view> args) {
    std::size_t size = 16;
    for (const auto a : args) size += a.size() + 16;
    command_writer w(args.size(), size);
    for (const auto a : args) w.arg(a);
    return w.take();
}

void connection::append(std::span<const std::string_view> args) { append_encoded(encode(args)); }

void connection::append_encoded(std::string_view command) {
    if (redisAppendFormattedCommand(context_, command.data(), command.size()) != REDIS_OK) broken_ = true;
}

reply connection::next_reply() {
    if (broken_) return {};
    void* r = nullptr;
    if (redisGetReply(context_, &r) != REDIS_OK || !r) {
        broken_ = true;
        return {};
    }
    return reply{static_cast<redisReply*>(r)};
}

reply connection::command(std::span<const std::string_view> args) {
    append(args);
    return next_reply();
}

reply connection::buffered_reply() {
    // Replies read whole before the line broke are still handed over (Redis answered them); a
    // reader that failed keeps failing, so nothing after a protocol error is.
    void* r = nullptr;
    if (redisGetReplyFromReader(context_, &r) != REDIS_OK) {
        broken_ = true;
        return {};
    }
    return r ? reply{static_cast<redisReply*>(r)} : reply{};
}

reply connection::wait_reply(std::chrono::milliseconds wait) {
    if (broken_) return {};
    void* r = nullptr;
    const auto take = [&]() -> bool {
        if (redisGetReplyFromReader(context_, &r) != REDIS_OK) broken_ = true;
        return broken_ || r != nullptr;
    };
    if (take()) return reply{static_cast<redisReply*>(r)};
    int done = 0;
    while (!done) {
        if (redisBufferWrite(context_, &done) != REDIS_OK) {
            broken_ = true;
            return {};
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return {};
        pollfd p{context_->fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            broken_ = true;
            return {};
        }
        if (n == 0) return {};
        if (redisBufferRead(context_) != REDIS_OK) {
            broken_ = true;
            return {};
        }
        if (take()) return reply{static_cast<redisReply*>(r)};
    }
}

int connection::fd() const { return context_->fd; }

void connection::io_failed(std::string why) {
    broken_ = true;
    if (io_error_.empty()) io_error_ = std::move(why);
}

bool connection::read_available(std::size_t max) {
    if (broken_) return false;
    char buffer[16384];
    std::size_t total = 0;
    while (total < max) {
        const auto n = ::recv(context_->fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) {
            if (redisReaderFeed(context_->reader, buffer, static_cast<std::size_t>(n)) != REDIS_OK) {
                io_failed("reader: out of memory");
                return false;
            }
            total += static_cast<std::size_t>(n);
            if (static_cast<std::size_t>(n) < sizeof buffer) return true;  // drained
            continue;
        }
        if (n == 0) {
            io_failed("Server closed the connection");
            return false;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        io_failed(std::generic_category().message(errno));
        return false;
    }
    return true;
}

std::ptrdiff_t connection::write_available(std::string_view bytes) {
    if (broken_) return -1;
    for (;;) {
        const auto n = ::send(context_->fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        io_failed(std::generic_category().message(errno));
        return -1;
    }
}

std::string connection::error() const {
    if (!io_error_.empty()) return io_error_;
    return context_->err ? std::string{context_->errstr} : std::string{};
}

}  // namespace zena::redis
