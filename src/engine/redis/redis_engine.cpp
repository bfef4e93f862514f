#include "engine/redis/redis_engine.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "engine/epoch.hpp"
#include "engine/local_delivery.hpp"
#include "engine/redis/wire.hpp"
#include "protocol/envelope.hpp"
#include "redis/pipeline.hpp"
#include "redis/subscriber.hpp"
#include "util/string_hash.hpp"

namespace zena::engine {
namespace {

// KEYS: meta, stream, latest keys, and with an idempotency key its record. ARGV: Pub/Sub channel
// ("": append only), body, max events, max age ms, meta ttl ms, epoch for a new channel life,
// latest key ("": none), "1": SPUBLISH, the idempotency window ms (with the record's key).
// Appends the body at the next seq, replaces the kept latest event of its key, trims by count,
// publishes "<seq> <epoch>\n<body>". The highest seq lost to a trim is kept in meta field l.
// With an idempotency key, the record ("<seq> <epoch>" of the first publish) is set first, only
// if absent (SET NX, one command more); when present the script answers {seq, epoch, 1} of the
// first publish and changes nothing.
// Each command a script calls costs Redis about a microsecond beyond its own work, so the common
// publish calls six: HMGET, HINCRBY, TIME, XLEN, XADD, SPUBLISH. Every 16th publish trims by
// age (up to 32 entries; reads trim by age themselves, so what a client gets never depends on
// it). The TTLs are set for max age + 1/16 and refreshed only when less than max age remains
// (meta field x holds that deadline): once per max age / 16, not on every publish.
constexpr std::string_view k_append_script = R"lua(
local meta, stream, keys = KEYS[1], KEYS[2], KEYS[3]
local age = tonumber(ARGV[4])
local m = redis.call('hmget', meta, 'e', 'l', 'a', 'x', 's')
local epoch, lost, due = m[1], tonumber(m[2]) or 0, tonumber(m[4]) or 0
if KEYS[4] then
  local at = epoch and (tonumber(m[5]) or 0) + 1 .. ' ' .. epoch or '1 ' .. ARGV[6]
  if not redis.call('set', KEYS[4], at, 'nx', 'px', ARGV[9]) then
    local seq, epoch = string.match(redis.call('get', KEYS[4]), '^(%d+) (.*)$')
    return {tonumber(seq) or 0, epoch or '', 1}
  end
end
if not epoch then
  epoch = ARGV[6]
  redis.call('del', stream, keys)
  redis.call('hset', meta, 'e', epoch, 's', 0, 'l', 0)
  lost, due = 0, 0
end
local seq = redis.call('hincrby', meta, 's', 1)
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local len = redis.call('xlen', stream)
local was, fresh = lost, len == 0
if fresh and seq > 1 then lost = seq - 1 end
redis.call('xadd', stream, seq .. '-0', 'b', ARGV[2], 't', now)
len = len + 1
local function drop(entries, stop)
  local ids = {}
  for _, e in ipairs(entries) do
    if stop and tonumber(e[2][4]) >= stop then break end
    ids[#ids + 1] = e[1]
    local s = tonumber(string.match(e[1], '^(%d+)'))
    if s > lost then lost = s end
  end
  for i = 1, #ids, 256 do len = len - redis.call('xdel', stream, unpack(ids, i, math.min(i + 255, #ids))) end
end
if ARGV[7] ~= '' then
  local old = redis.call('hget', keys, ARGV[7])
  if old then len = len - redis.call('xdel', stream, old .. '-0') end
  redis.call('hset', keys, ARGV[7], seq)
  redis.call('pexpire', keys, age)
end
local max = tonumber(ARGV[3])
if len > max then drop(redis.call('xrange', stream, '-', '+', 'count', len - max)) end
if seq % 16 == 0 then
  local head = redis.call('xrange', stream, '-', '+', 'count', 1)[1]
  if head and tonumber(head[2][4]) < now - age then drop(redis.call('xrange', stream, '-', '+', 'count', 32), now - age) end
end
local out = {}
if lost ~= was then out[#out + 1] = 'l'; out[#out + 1] = lost end
if tonumber(m[3]) ~= age then out[#out + 1] = 'a'; out[#out + 1] = age end
if fresh or now + age > due then
  due = now + age + math.ceil(age / 16)
  redis.call('pexpire', stream, due - now)
  redis.call('pexpire', meta, tonumber(ARGV[5]) + due - now)
  out[#out + 1] = 'x'; out[#out + 1] = due
end
if #out > 0 then redis.call('hset', meta, unpack(out)) end
if ARGV[1] ~= '' then
  local msg = seq .. ' ' .. epoch .. '\n' .. ARGV[2]
  if ARGV[8] == '1' then redis.call('spublish', ARGV[1], msg) else redis.call('publish', ARGV[1], msg) end
end
return {seq, epoch}
)lua";

// KEYS: an idempotency key's record. ARGV: Pub/Sub channel, message, window ms, "1": SPUBLISH.
// Publishes an unstored message once per key within the window: answers 1, or 0 (a duplicate).
// Its record is "0 " (no seq, no epoch), so that a stored publish repeating the key on the
// channel reads it as the append script's records are read.
constexpr std::string_view k_once_script = R"lua(
if not redis.call('set', KEYS[1], '0 ', 'nx', 'px', ARGV[3]) then return 0 end
if ARGV[4] == '1' then redis.call('spublish', ARGV[1], ARGV[2]) else redis.call('publish', ARGV[1], ARGV[2]) end
return 1
)lua";

// KEYS: meta, stream, latest keys. ARGV: since epoch, since seq (-1: none), limit (0: the top alone), epoch
// for a new channel life, meta ttl ms (meta lives at least that long; a read never shortens what
// an append set). Answers {epoch, top, recovered (0/1), events}: a stream
// gone while seq > 0 expired by age (all its events lost); events older than the channel's max
// age are lost first and never returned: the first young one is found by halving the seqs
// (O(log events) steps), and at most 4,096 aged ones are deleted per read, so that a read of
// a long history stays short (the appends and later reads delete the rest). A new channel life drops the stream and the
// latest keys alike: a key's seq of the old life would otherwise delete an event of the new one without counting it
// lost.
constexpr std::string_view k_read_script = R"lua(
local meta, stream, keys = KEYS[1], KEYS[2], KEYS[3]
local epoch = redis.call('hget', meta, 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('del', stream, keys)
  redis.call('hset', meta, 'e', epoch, 's', 0, 'l', 0)
end
if redis.call('pttl', meta) < tonumber(ARGV[5]) then redis.call('pexpire', meta, ARGV[5]) end
local top = tonumber(redis.call('hget', meta, 's')) or 0
local lost = tonumber(redis.call('hget', meta, 'l')) or 0
local was = lost
if top > 0 and redis.call('exists', stream) == 0 then lost = top end
local age = tonumber(redis.call('hget', meta, 'a'))
local young = 0  -- no event below this seq is younger than max age (0: none aged ahead)
if age and lost < top then
  local t = redis.call('time')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age
  local head = redis.call('xrange', stream, '-', '+', 'count', 1)[1]
  if head and tonumber(head[2][4]) < cutoff then
    local function seq_of(id) return tonumber(string.match(id, '^(%d+)')) end
    -- Append times grow with seq: halve the seqs between the head and the top for the first
    -- young event. Every event below lo is aged; the first at or above hi is young, or none.
    local lo, hi = seq_of(head[1]) + 1, top + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local e = redis.call('xrange', stream, mid .. '-0', '+', 'count', 1)[1]
      if not e or tonumber(e[2][4]) >= cutoff then hi = mid else lo = math.min(seq_of(e[1]) + 1, hi) end
    end
    young = lo
    local last = redis.call('xrevrange', stream, (lo - 1) .. '-0', '-', 'count', 1)[1]
    if last and seq_of(last[1]) > lost then lost = seq_of(last[1]) end
    -- At most 4,096 go now, so that a read stays short; the rest go with the next reads and
    -- appends, and are never returned meanwhile.
    local ids = {}
    for _, e in ipairs(redis.call('xrange', stream, '-', (lo - 1) .. '-0', 'count', 4096)) do ids[#ids + 1] = e[1] end
    for i = 1, #ids, 256 do redis.call('xdel', stream, unpack(ids, i, math.min(i + 255, #ids))) end
  end
end
if lost ~= was then redis.call('hset', meta, 'l', lost) end
local since = tonumber(ARGV[2])
local recovered, from = 1, '-'
if since < 0 then
  recovered = (lost == 0) and 1 or 0
elseif ARGV[1] ~= epoch or since > top then
  recovered = 0
else
  recovered = (since >= lost) and 1 or 0
  from = (since + 1) .. '-0'
end
if young > 0 and (from == '-' or since + 1 < young) then from = young .. '-0' end
local limit = tonumber(ARGV[3])
local events = {}
if limit > 0 then events = redis.call('xrange', stream, from, '+', 'count', limit) end
return {epoch, top, recovered, events}
)lua";

// Channel presence. KEYS: clients (hash client -> user), expiries (zset), users (hash user ->
// live clients). Each script first drops the expired entries.
constexpr std::string_view k_presence_sweep = R"lua(
local function sweep(clients, expiries, users)
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, c in ipairs(redis.call('zrangebyscore', expiries, '-inf', now)) do
    local u = redis.call('hget', clients, c)
    redis.call('hdel', clients, c)
    redis.call('zrem', expiries, c)
    if u and redis.call('hincrby', users, u, -1) <= 0 then redis.call('hdel', users, u) end
  end
  return now
end
)lua";

// ARGV: client, user, ttl ms. Answers 1 when the client is its user's first live one.
constexpr std::string_view k_presence_join = R"lua(
local clients, expiries, users = KEYS[1], KEYS[2], KEYS[3]
local now = sweep(clients, expiries, users)
local client, user, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local old = redis.call('hget', clients, client)
local first = 0
if old ~= user then
  if old and redis.call('hincrby', users, old, -1) <= 0 then redis.call('hdel', users, old) end
  redis.call('hset', clients, client, user)
  if redis.call('hincrby', users, user, 1) == 1 then first = 1 end
end
redis.call('zadd', expiries, now + ttl, client)
for _, k in ipairs({clients, expiries, users}) do
  if redis.call('pttl', k) < ttl then redis.call('pexpire', k, ttl) end
end
return first
)lua";

// ARGV: client. Answers 1 when the client was there and its user has no live client left.
constexpr std::string_view k_presence_leave = R"lua(
local clients, expiries, users = KEYS[1], KEYS[2], KEYS[3]
sweep(clients, expiries, users)
local old = redis.call('hget', clients, ARGV[1])
if not old then return 0 end
redis.call('hdel', clients, ARGV[1])
redis.call('zrem', expiries, ARGV[1])
if redis.call('hincrby', users, old, -1) <= 0 then
  redis.call('hdel', users, old)
  return 1
end
return 0
)lua";

// Answers {live clients, user, count, user, count, ...}; ARGV[1] "1": the user count alone.
constexpr std::string_view k_presence_query = R"lua(
local clients, expiries, users = KEYS[1], KEYS[2], KEYS[3]
sweep(clients, expiries, users)
if ARGV[1] == '1' then return redis.call('hlen', users) end
local out = {redis.call('hlen', clients)}
for _, v in ipairs(redis.call('hgetall', users)) do out[#out + 1] = v end
return out
)lua";

// User presence for the backend (presence.online and .offline, decided once for the deployment).
// KEYS: nodes (zset node -> expiry ms, refreshed by each node's heartbeat), counts (hash user ->
// nodes holding it), due (zset user -> when to settle it: its last node let it go), told (set:
// the users announced online), mine (set: the users this node holds, `<prefix>:online:on:<node>`).
// The shard of a user holds its entries. A node's liveness is one entry, so keeping a million
// users online costs each node one command a period, not one per user.
constexpr std::string_view k_online_now = R"lua(
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nodes, counts, due, told, mine = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
)lua";

// ARGV: node, ttl ms, users... This node has each user (its first connection here). Answers the
// users that were not announced online: this node announces them.
constexpr std::string_view k_online_arrive = R"lua(
redis.call('zadd', nodes, now + tonumber(ARGV[2]), ARGV[1])
local out = {}
for i = 3, #ARGV do
  local user = ARGV[i]
  if redis.call('sadd', mine, user) == 1 then redis.call('hincrby', counts, user, 1) end
  redis.call('zrem', due, user)
  if redis.call('sadd', told, user) == 1 then out[#out + 1] = user end
end
return out
)lua";

// ARGV: node, user, grace ms. This node's last connection of the user left: when no node holds
// the user now, it is settled after the grace.
constexpr std::string_view k_online_depart = R"lua(
local user = ARGV[2]
if redis.call('srem', mine, user) == 1 and redis.call('hincrby', counts, user, -1) <= 0 then
  redis.call('hdel', counts, user)
  redis.call('zadd', due, now + tonumber(ARGV[3]), user)
end
return 0
)lua";

// ARGV: node, ttl ms. The node's heartbeat: answers 1 when Redis did not know the node (it lost
// its data, or the node was taken for dead): the node then states its users again.
constexpr std::string_view k_online_heartbeat = R"lua(
return redis.call('zadd', nodes, now + tonumber(ARGV[2]), ARGV[1])
)lua";

// ARGV: node, ttl ms, grace ms. Before the node states its users again: forget what Redis holds
// for it (what it missed while Redis was away), the users it no longer holds due after the grace.
constexpr std::string_view k_online_reset = R"lua(
for _, user in ipairs(redis.call('smembers', mine)) do
  if redis.call('hincrby', counts, user, -1) <= 0 then
    redis.call('hdel', counts, user)
    redis.call('zadd', due, now + tonumber(ARGV[3]), user)
  end
end
redis.call('del', mine)
redis.call('zadd', nodes, now + tonumber(ARGV[2]), ARGV[1])
return 0
)lua";

// ARGV: the prefix of the nodes' user sets, at most this many users a call. The users of nodes
// whose heartbeat stopped (dead) let go; a user no node holds now is due at once. Answers the due
// users that no node holds and were announced online: the caller announces them offline (once:
// the script is atomic). (The dead nodes' sets are named here, not in KEYS: one Redis per shard,
// never Redis Cluster.)
constexpr std::string_view k_online_settle = R"lua(
local budget = tonumber(ARGV[2])
for _, node in ipairs(redis.call('zrangebyscore', nodes, '-inf', now, 'limit', 0, 8)) do
  local set = ARGV[1] .. node
  local users = redis.call('spop', set, budget)
  for _, user in ipairs(users) do
    if redis.call('hincrby', counts, user, -1) <= 0 then
      redis.call('hdel', counts, user)
      redis.call('zadd', due, now, user)
    end
  end
  budget = budget - #users
  if redis.call('scard', set) == 0 then redis.call('zrem', nodes, node) end
  if budget <= 0 then break end
end
local out = {}
for _, user in ipairs(redis.call('zrangebyscore', due, '-inf', now, 'limit', 0, tonumber(ARGV[2]))) do
  redis.call('zrem', due, user)
  if redis.call('hexists', counts, user) == 0 and redis.call('srem', told, user) == 1 then out[#out + 1] = user end
end
return out
)lua";

std::string sha1_hex(std::string_view text) {
    std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (const auto b : digest) {
        out.push_back(k_hex[b >> 4U]);
        out.push_back(k_hex[b & 0xFU]);
    }
    return out;
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const auto c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

std::optional<std::uint64_t> seq_of_id(std::string_view id) {
    std::uint64_t seq = 0;
    const auto dash = id.find('-');
    const auto digits = id.substr(0, dash);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (ec != std::errc{} || ptr != digits.data() + digits.size()) return std::nullopt;
    return seq;
}

// What a failed reply says, for an error: "redis: <Redis's error>", or "redis: unreachable".
util::error redis_error(const redis::reply& r) {
    return util::error{"redis: " + (r.empty() ? std::string{"unreachable"} : r.error_text())};
}

std::int64_t integer_of(const redisReply* r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    std::int64_t v = 0;
    const auto s = redis::str_of(r);
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

std::shared_ptr<engine::event> event_of(const wire::body& b) {
    auto e = std::make_shared<engine::event>();
    e->type = b.type;
    e->payload = b.payload;
    e->message.delivery = b.delivery;
    e->message.latest_key = b.latest_key;
    if (b.everyone) e->message.frame = protocol::make_event_frame(e->type, e->payload);
    return e;
}

// The stream entries of a read script's answer, as the history gives them.
util::result<history_page> page_of(const redis::reply& r, std::string_view channel) {
    if (!r.ok()) return util::error{r.empty() ? "redis unreachable" : r.error_text()};
    if (!r.is_array() || r.size() != 4) return util::error{"redis answered an unexpected read"};
    history_page page;
    page.top.epoch = std::string{redis::str_of(r.element(0))};
    page.top.seq = static_cast<std::uint64_t>(integer_of(r.element(1)));
    page.recovered = integer_of(r.element(2)) == 1;
    const auto* events = r.element(3);
    for (std::size_t i = 0; i < redis::size_of(events); ++i) {
        const auto* entry = redis::element_of(events, i);
        const auto seq = seq_of_id(redis::str_of(redis::element_of(entry, 0)));
        const auto* fields = redis::element_of(entry, 1);
        std::string_view body;
        std::int64_t at = 0;
        for (std::size_t f = 0; f + 1 < redis::size_of(fields); f += 2) {
            const auto name = redis::str_of(redis::element_of(fields, f));
            if (name == "b") body = redis::str_of(redis::element_of(fields, f + 1));
            if (name == "t") at = integer_of(redis::element_of(fields, f + 1));
        }
        auto decoded = wire::decode_body(body);
        if (!seq || !decoded) return util::error{"redis holds an unreadable history entry"};
        stored_event stored;
        stored.seq = *seq;
        stored.published_ms = at;
        auto e = event_of(*decoded);
        stored.message = channel_message(*e, channel, position{page.top.epoch, *seq});
        stored.event = std::move(e);
        page.events.push_back(std::move(stored));
    }
    return page;
}

}  // namespace

std::size_t redis_engine::shard_of(std::string_view channel, std::size_t shards) {
    // Jump consistent hash (Lamping and Veach): adding a shard moves only 1/n of the channels.
    std::uint64_t key = fnv1a(channel);
    std::int64_t b = -1;
    std::int64_t j = 0;
    while (j < static_cast<std::int64_t>(shards)) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                      (static_cast<double>(1LL << 31) / static_cast<double>((key >> 33U) + 1)));
    }
    return static_cast<std::size_t>(b < 0 ? 0 : b);
}

struct redis_engine::impl final : public broker, public history, public engine::cluster, public engine::presence {
    // A channel a node holds: what it last handed its hubs, and the messages held while it reads
    // what it missed.
    struct track {
        std::string epoch;
        std::uint64_t seq = 0;
        bool catching_up = false;
        std::vector<wire::message> held;
    };
    // What one burst read from Pub/Sub hands the hubs at once.
    struct burst {
        std::vector<publication> pubs;
        std::vector<std::vector<appended>> framed;
        std::vector<std::pair<std::uint64_t, std::uint32_t>> echoes;  // token, index; token 0: none
    };
    struct shard {
        std::unique_ptr<redis::pipeline> commands;
        std::unique_ptr<redis::subscriber> pubsub;
        // The canary, on the subscriber's thread: when it was sent and when one last came back.
        std::chrono::steady_clock::time_point canary_sent{};
        std::chrono::steady_clock::time_point next_settle{};  // the subscriber's thread's
        bool canary_out = false;
        std::atomic<std::int64_t> canary_back_ms{0};  // steady clock ms of the last return; 0: none yet
        util::string_map<track> tracks;               // the subscriber's thread's
        burst pending;                                // the subscriber's thread's
    };
    // A publish waiting for its replies and for this node's copies.
    struct waiting {
        std::mutex mutex;
        broker::publish_done done;
        std::vector<publish_outcome> outcomes;
        std::size_t replies = 0;
        std::size_t echoes = 0;
        std::optional<std::string> failed;  // the first error reply; "": not sent
        bool maybe_applied = false;         // a command answered, or written and not answered
        std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
        bool answered = false;
        std::uint64_t token = 0;
        std::size_t coming = 0;  // of `echoes`, the copies not yet handed to the hubs (in coming_copies)
    };

    redis_engine_options options;
    local_delivery delivery;
    std::string append_sha = sha1_hex(k_append_script);
    std::string read_sha = sha1_hex(k_read_script);
    std::string once_sha = sha1_hex(k_once_script);
    std::string join_script = std::string{k_presence_sweep} + std::string{k_presence_join};
    std::string leave_script = std::string{k_presence_sweep} + std::string{k_presence_leave};
    std::string query_script = std::string{k_presence_sweep} + std::string{k_presence_query};
    std::string arrive_script = std::string{k_online_now} + std::string{k_online_arrive};
    std::string depart_script = std::string{k_online_now} + std::string{k_online_depart};
    std::string settle_script = std::string{k_online_now} + std::string{k_online_settle};
    std::string heartbeat_script = std::string{k_online_now} + std::string{k_online_heartbeat};
    std::string reset_script = std::string{k_online_now} + std::string{k_online_reset};
    std::string arrive_sha = sha1_hex(arrive_script);
    std::string depart_sha = sha1_hex(depart_script);
    std::string settle_sha = sha1_hex(settle_script);
    std::string heartbeat_sha = sha1_hex(heartbeat_script);
    std::string reset_sha = sha1_hex(reset_script);
    std::string join_sha = sha1_hex(join_script);
    std::string leave_sha = sha1_hex(leave_script);
    std::string query_sha = sha1_hex(query_script);
    // Presence entries this node holds until their leave (asked for longer than presence_ttl):
    // refreshed every third of it. channel -> client -> user.
    std::mutex held_mutex;
    std::map<std::string, std::map<std::string, std::string>> held;
    std::chrono::steady_clock::time_point next_presence_refresh{};
    // The users this node holds (user_here), stated again after Redis lost them or the node was
    // away from it; its heartbeat every third of presence_ttl, and at once after a shard comes
    // back (`users_soon`).
    std::mutex users_mutex;
    std::unordered_set<std::string, util::string_hash, std::equal_to<>> users_here;
    std::atomic<bool> users_soon{false};
    std::chrono::steady_clock::time_point next_users_refresh{};
    std::string all_channel;
    std::string channel_prefix;
    std::vector<std::unique_ptr<shard>> shards;
    std::atomic<std::uint64_t> next_token{1};
    mutable epoch_source epochs;  // the epoch a channel takes when a script finds it has none
    const std::string meta_ttl = std::to_string(options.meta_ttl.count());
    const std::string presence_ttl_ms = std::to_string(options.presence_ttl.count());
    const std::string offline_grace_ms = std::to_string(options.offline_grace.count());
    std::atomic<bool> stopping{false};
    // The shards are all built: the subscribers' callbacks may use them.
    std::atomic<bool> constructed{false};

    std::mutex waiting_mutex;
    std::unordered_map<std::uint64_t, std::shared_ptr<waiting>> waiting_for;
    // The sum of every waiting publish's `coming`, changed with it under its mutex.
    std::atomic<std::size_t> coming_copies{0};
    std::size_t coming() const override { return coming_copies.load(std::memory_order_relaxed); }
    // `w` (its mutex held) expects no more copies: a failure, an echo complete, or the timeout.
    void settle_coming(waiting& w) {
        coming_copies.fetch_sub(w.coming, std::memory_order_relaxed);
        w.coming = 0;
    }
    // `w` (its mutex held) waits for no more copies (a failure, its copies all back or skipped):
    // no longer coming, and no longer found by its token.
    void stop_waiting(waiting& w) {
        settle_coming(w);
        const std::lock_guard lock{waiting_mutex};
        waiting_for.erase(w.token);
    }
    // The publish of `token` still waiting for its copies, or null (answered, failed, too late).
    std::shared_ptr<waiting> waiting_of(std::uint64_t token) {
        const std::lock_guard lock{waiting_mutex};
        const auto it = waiting_for.find(token);
        return it == waiting_for.end() ? nullptr : it->second;
    }
    // A copy of `w` was handed to the hubs: a task is queued on every event loop, so none needs
    // to wait for it any longer.
    void handed_over(waiting& w) {
        const std::lock_guard lock{w.mutex};
        if (w.coming == 0) return;
        --w.coming;
        coming_copies.fetch_sub(1, std::memory_order_relaxed);
    }

    // Surveys waiting for the nodes' answers.
    struct survey_state {
        survey_done done;
        std::vector<std::string> answers;
        long long expected = -1;  // nodes that received the request; -1: not known yet
        std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
    };
    std::mutex surveys_mutex;
    std::unordered_map<std::uint64_t, survey_state> surveys;
    std::shared_ptr<const handler> request_handler;  // under surveys_mutex (set while Pub/Sub may run)
    std::string control_channel;
    std::string reply_channel;
    std::string canary_channel;
    std::string nodes_key;
    std::string online_set_prefix;           // of each node's set of users: + the node's id
    std::array<std::string, 5> online_keys;  // user presence: nodes, counts, due, told, mine
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point next_refresh{};

    // This node's interest: channel -> its subscription is confirmed.
    mutable std::mutex interest_mutex;
    util::string_map<bool> interest;

    impl(redis_engine_options o, hub::hub_set& hubs)
        : options(std::move(o)),
          delivery(hubs),
          all_channel(options.prefix + ":all"),
          channel_prefix(options.prefix + ":p:"),
          control_channel(options.prefix + ":control"),
          reply_channel(options.prefix + ":reply:" + options.node_id),
          canary_channel(options.prefix + ":canary:" + options.node_id),
          nodes_key(options.prefix + ":nodes"),
          online_set_prefix(options.prefix + ":online:on:"),
          online_keys{options.prefix + ":online:nodes", options.prefix + ":online:n", options.prefix + ":online:d",
                      options.prefix + ":online:t", online_set_prefix + options.node_id} {
        for (std::size_t i = 0; i < options.shards.size(); ++i) {
            auto s = std::make_unique<shard>();
            auto* sp = s.get();
            const auto name = "redis engine shard " + std::to_string(i);
            s->commands = std::make_unique<redis::pipeline>(redis::pipeline_options{
                .where = options.shards[i],
                .timeout = options.timeout,
                .on_connect = [this](redis::connection& c, std::string& error) { return load_scripts(c, error); },
                .name = name,
                .context = options.context});
            s->pubsub = std::make_unique<redis::subscriber>(redis::subscriber_options{
                .where = options.shards[i],
                .timeout = options.timeout,
                .on_message = [this, sp](std::string_view channel,
                                         std::string_view message) { on_message(*sp, channel, message); },
                .on_burst = [this, sp] { flush(*sp); },
                .on_up =
                    [this, sp] {
                        if (constructed.load()) on_up(*sp);
                    },
                .on_down =
                    [this, sp] {
                        if (constructed.load()) on_down(*sp);
                    },
                .on_tick =
                    [this, i, sp] {
                        if (!constructed.load()) return;
                        if (i == 0) {
                            sweep_waiting();
                            sweep_surveys();
                            refresh_registry();
                            refresh_presence();
                            refresh_users();
                        }
                        canary(*sp);
                        settle(*sp);
                    },
                .name = name + " pubsub",
                .context = options.context});
            shards.push_back(std::move(s));
        }
        shards.front()->pubsub->subscribe(all_channel);
        shards.front()->pubsub->subscribe(control_channel);
        shards.front()->pubsub->subscribe(reply_channel);
        for (auto& s : shards) s->pubsub->subscribe(canary_channel);
        constructed.store(true);
    }

    ~impl() override {
        stopping.store(true);
        // Every thread stops before any object goes: a thread's callbacks reach other shards'
        // subscribers and pipelines (a reset pointer is null while its thread still runs).
        for (auto& s : shards) s->pubsub->stop();
        for (auto& s : shards) s->commands->stop();
        for (auto& s : shards) s->pubsub.reset();
        for (auto& s : shards) s->commands.reset();
    }

    shard& shard_for(std::string_view channel) { return *shards[redis_engine::shard_of(channel, shards.size())]; }

    // Every script the engine runs by its SHA, loaded on each connect (and again on NOSCRIPT).
    std::array<std::string_view, 11> scripts() const {
        return {k_append_script, k_read_script, join_script,      leave_script, query_script, arrive_script,
                depart_script,   settle_script, heartbeat_script, reset_script, k_once_script};
    }

    bool load_scripts(redis::connection& c, std::string& error) {
        for (const auto script : scripts()) {
            const std::string_view argv[] = {"SCRIPT", "LOAD", script};
            auto r = c.command(argv);
            if (!r.ok()) {
                error = "SCRIPT LOAD failed: " + (r.empty() ? c.error() : r.error_text());
                return false;
            }
        }
        return true;
    }

    // A channel's keys (docs/engine.md), as the parts redis::command_writer writes them from.
    static constexpr std::string_view k_meta = "}:m", k_stream = "}:h", k_keys = "}:k", k_once = "}:i:";
    const std::string idempotency_window =
        std::to_string(std::max<std::int64_t>(1, options.idempotency_window.count()));
    std::array<std::string_view, 4> key_parts(std::string_view channel, std::string_view kind) const {
        return {options.prefix, ":{", channel, kind};
    }
    std::string key(std::string_view channel, std::string_view kind) const {
        std::string out;
        for (const auto part : key_parts(channel, kind)) out += part;
        return out;
    }
    std::string meta_key(std::string_view channel) const { return key(channel, k_meta); }
    std::string stream_key(std::string_view channel) const { return key(channel, k_stream); }
    std::string keys_key(std::string_view channel) const { return key(channel, k_keys); }
    std::string pubsub_channel(std::string_view channel) const { return channel_prefix + std::string(channel); }

    bool confirmed(const std::string& channel) const {
        const std::lock_guard lock{interest_mutex};
        const auto it = interest.find(channel);
        return it != interest.end() && it->second;
    }

    // ---- broker ----

    // The append script's command, encoded (redis::command_writer): the hot path of a stored
    // publish, one string for the whole command.
    std::string append_command(std::string_view channel, std::string_view body, const publication& p, bool publish,
                               bool sharded) const {
        const bool once = !p.idempotency_key.empty();
        const auto age = std::to_string(std::max<std::int64_t>(1, p.limits.max_age.count()));
        const auto max_events = std::to_string(std::max<std::size_t>(1, p.limits.max_events));
        const auto epoch = epochs.next();
        const auto& e = *p.event;
        const auto latest =
            e.message.delivery == ws::delivery_class::latest ? std::to_string(e.message.latest_key) : std::string{};
        redis::command_writer w(once ? 16 : 14, body.size() + 5 * (options.prefix.size() + channel.size()) +
                                                    p.idempotency_key.size() + 200);
        w.arg("EVALSHA").arg(append_sha).arg(once ? "4" : "3");
        w.arg(key_parts(channel, k_meta)).arg(key_parts(channel, k_stream)).arg(key_parts(channel, k_keys));
        if (once) w.arg(once_key_parts(channel, p.idempotency_key));
        if (publish) {
            w.arg({channel_prefix, channel});
        } else {
            w.arg("");  // append only
        }
        w.arg(body).arg(max_events).arg(age).arg(meta_ttl).arg(epoch).arg(latest).arg(sharded ? "1" : "0");
        if (once) w.arg(idempotency_window);
        return w.take();
    }

    // The record of an idempotency key on `scope` (a channel, or k_everyone_scope).
    std::array<std::string_view, 5> once_key_parts(std::string_view scope, std::string_view key) const {
        return {options.prefix, ":{", scope, k_once, key};
    }

    // An unstored message published once per idempotency key (k_once_script).
    std::string once_command(std::string_view scope, std::string_view key, std::string_view to, std::string_view body,
                             bool sharded) const {
        return redis::command_writer(8, to.size() + body.size() + 2 * scope.size() + key.size() + 128)
            .arg("EVALSHA")
            .arg(once_sha)
            .arg("1")
            .arg(once_key_parts(scope, key))
            .arg(to)
            .arg({wire::k_unstored_header, body})
            .arg(idempotency_window)
            .arg(sharded ? "1" : "0")
            .take();
    }

    void publish(std::shared_ptr<const std::vector<publication>> batch, publish_done done) override {
        if (auto refused = unstorable(*batch)) return done(std::move(*refused));
        for (const auto& s : shards) {
            if (!s->commands->up() && !s->commands->last_error().empty()) {
                // Not answered from the line: refused before anything is sent, at once.
                return done(util::error{"redis unreachable: not published (" + s->commands->last_error() + ")"});
            }
        }
        const auto token = next_token.fetch_add(1, std::memory_order_relaxed);
        auto w = std::make_shared<waiting>();
        w->done = std::move(done);
        w->outcomes.resize(batch->size());
        std::vector<std::vector<std::string>> commands(shards.size());  // encoded
        std::vector<std::vector<redis::pipeline::callback>> callbacks(shards.size());
        const auto spublish = [](std::string_view verb, std::string_view to, std::string_view body) {
            return redis::command_writer(3, to.size() + body.size() + 64)
                .arg(verb)
                .arg(to)
                .arg({wire::k_unstored_header, body})
                .take();
        };
        for (std::size_t i = 0; i < batch->size(); ++i) {
            const auto& p = (*batch)[i];
            wire::body b;
            b.everyone = p.everyone;
            b.ordered = p.ordered;
            b.delivery = p.event->message.delivery;
            b.latest_key = p.event->message.latest_key;
            b.origin = options.node_id;
            b.token = token;
            b.index = static_cast<std::uint32_t>(i);
            b.except_user = p.except_user;
            b.except_connection = p.except_connection;
            b.type = p.event->type;
            b.payload = p.event->payload;
            const auto body = wire::encode(b);
            const bool once = !p.idempotency_key.empty();
            // Target `c` (of shard `index`, scope a channel or k_everyone_scope), not stored:
            // published on `to`, once per key when the publication has one.
            const auto unstored = [&](std::size_t index, std::size_t c, std::string_view scope, std::string_view to,
                                      bool echo) {
                const bool sharded = shards[index]->pubsub->sharded();
                if (!once) {
                    commands[index].push_back(spublish(sharded ? "SPUBLISH" : "PUBLISH", to, body));
                    callbacks[index].push_back([this, w](redis::reply r) { replied(w, r); });
                    return;
                }
                commands[index].push_back(once_command(scope, p.idempotency_key, to, body, sharded));
                callbacks[index].push_back([this, w, i, c, echo](redis::reply r) {
                    if (r.ok() && integer_of(r.raw()) == 0) skipped(*w, i, c, echo);
                    replied(w, r);
                });
            };
            if (p.everyone) {
                const bool echo = shards.front()->pubsub->up();
                ++w->replies;
                if (echo) ++w->echoes;
                if (once) w->outcomes[i].duplicate.resize(1);
                unstored(0, 0, k_everyone_scope, all_channel, echo);
                continue;
            }
            if (p.history) w->outcomes[i].positions.resize(p.channels.size());
            if (once) w->outcomes[i].duplicate.resize(p.channels.size());
            for (std::size_t c = 0; c < p.channels.size(); ++c) {
                const auto& channel = p.channels[c];
                const auto index = redis_engine::shard_of(channel, shards.size());
                const bool echo = confirmed(channel);
                ++w->replies;
                if (echo) ++w->echoes;
                if (p.history) {
                    commands[index].push_back(append_command(channel, body, p, true, shards[index]->pubsub->sharded()));
                    callbacks[index].push_back([this, w, i, c, echo](redis::reply r) {
                        if (r.ok() && r.is_array() && (r.size() == 2 || r.size() == 3)) {
                            {
                                const std::lock_guard lock{w->mutex};
                                w->outcomes[i].positions[c] =
                                    position{std::string{redis::str_of(r.element(1))},
                                             static_cast<std::uint64_t>(integer_of(r.element(0)))};
                            }
                            if (r.size() == 3) skipped(*w, i, c, echo);
                        }
                        replied(w, r);
                    });
                } else {
                    unstored(index, c, channel, pubsub_channel(channel), echo);
                }
            }
        }
        if (w->replies == 0) return answer(w);
        if (w->echoes > 0) {
            w->token = token;
            w->coming = w->echoes;
            coming_copies.fetch_add(w->coming, std::memory_order_relaxed);
            const std::lock_guard lock{waiting_mutex};
            waiting_for.emplace(token, w);
        }
        for (std::size_t i = 0; i < shards.size(); ++i) {
            if (!commands[i].empty()) {
                shards[i]->commands->submit_encoded(std::move(commands[i]), std::move(callbacks[i]));
            }
        }
    }

    // Target `c` of publication `index` was a duplicate (its idempotency key was published there):
    // nothing was published, so no copy comes back for it (`echo`: one was expected).
    void skipped(waiting& w, std::size_t index, std::size_t c, bool echo) {
        const std::lock_guard lock{w.mutex};
        auto& duplicate = w.outcomes[index].duplicate;
        if (c < duplicate.size()) duplicate[c] = true;
        if (!echo || w.echoes == 0) return;
        --w.echoes;
        if (w.coming > 0) {
            --w.coming;
            coming_copies.fetch_sub(1, std::memory_order_relaxed);
        }
        if (w.echoes == 0) stop_waiting(w);
    }

    void replied(const std::shared_ptr<waiting>& w, const redis::reply& r) {
        {
            const std::lock_guard lock{w->mutex};
            if (r.ok() || r.outcome_unknown()) w->maybe_applied = true;
            if (!r.ok() && !w->failed) {
                w->failed = r.empty() ? std::string{} : r.error_text();
                if (!r.empty() && r.error_text().starts_with("NOSCRIPT")) {
                    spdlog::warn("redis engine: scripts missing (SCRIPT FLUSH?); they are loaded again");
                }
                w->echoes = 0;  // failed: answered as soon as every reply is in
                stop_waiting(*w);
            }
            --w->replies;
            if (w->replies > 0 || w->echoes > 0 || w->answered) return;
            w->answered = true;
        }
        answer(w);
    }

    void answer(const std::shared_ptr<waiting>& w) {
        if (w->failed) {
            if (w->failed->starts_with("NOSCRIPT")) reload_scripts();
            // What a retry risks: a publish Redis may have run (a command written and not
            // answered, or one of several answered) would be delivered twice.
            if (w->maybe_applied)
                return w->done(util::error{"redis did not answer: the publish may have been applied"});
            if (w->failed->empty()) return w->done(util::error{"redis unreachable: not published"});
            return w->done(util::error{"redis: " + *w->failed});
        }
        w->done(std::move(w->outcomes));
    }

    void reload_scripts() {
        for (auto& s : shards) {
            for (const auto script : scripts()) {
                s->commands->submit({"SCRIPT", "LOAD", std::string{script}}, {});
            }
        }
    }

    // A copy of `w` reached `count` connections here (publication `index` of it). A copy late
    // for a publish already answered (failed, or past the timeout) changes nothing: its outcomes
    // are gone with the answer.
    void echoed(const std::shared_ptr<waiting>& w, std::uint32_t index, std::size_t count) {
        {
            const std::lock_guard lock{w->mutex};
            if (w->answered) return;
            if (index < w->outcomes.size()) w->outcomes[index].delivered += count;
            if (w->echoes > 0) --w->echoes;
            if (w->echoes > 0) return;
            stop_waiting(*w);  // its copies were all handed over, perhaps before handed_over() ran
            if (w->replies > 0 || w->answered) return;
            w->answered = true;
        }
        answer(w);
    }

    // Publishes whose copy never came back (the channel's last connection left meanwhile, or
    // Pub/Sub broke): answered with what this node delivered, after the timeout.
    void sweep_waiting() {
        std::vector<std::shared_ptr<waiting>> late;
        const auto cutoff = std::chrono::steady_clock::now() - options.timeout;
        {
            const std::lock_guard lock{waiting_mutex};
            for (auto it = waiting_for.begin(); it != waiting_for.end();) {
                if (it->second->since < cutoff) {
                    late.push_back(it->second);
                    it = waiting_for.erase(it);
                } else {
                    ++it;
                }
            }
        }
        for (auto& w : late) {
            {
                const std::lock_guard lock{w->mutex};
                w->echoes = 0;
                settle_coming(*w);
                if (w->replies > 0 || w->answered) continue;
                w->answered = true;
            }
            answer(w);
        }
    }

    void subscribe(std::string_view channel) override {
        std::string name{channel};
        {
            const std::lock_guard lock{interest_mutex};
            interest[name] = false;
        }
        shard_for(channel).pubsub->subscribe(pubsub_channel(channel), [this, name](bool ok) {
            if (!ok) return;
            const std::lock_guard lock{interest_mutex};
            if (const auto it = interest.find(name); it != interest.end()) it->second = true;
        });
    }

    void unsubscribe(std::string_view channel) override {
        std::string name{channel};
        {
            const std::lock_guard lock{interest_mutex};
            interest.erase(name);
        }
        auto& s = shard_for(channel);
        s.pubsub->unsubscribe(pubsub_channel(channel));
        s.pubsub->post([&s, name] { s.tracks.erase(name); });
    }

    // ---- Pub/Sub: on the subscribers' thread (options.context: loop 0 in the app) ----

    void on_message(shard& s, std::string_view redis_channel, std::string_view bytes) {
        if (redis_channel == canary_channel) return canary_back(s, bytes);
        if (redis_channel == control_channel) return requested(bytes);
        if (redis_channel == reply_channel) return answered(bytes);
        auto m = wire::decode_message(bytes);
        if (!m) {
            spdlog::warn("redis engine: an unreadable message on {} ({} bytes) is dropped", redis_channel,
                         bytes.size());
            return;
        }
        if (redis_channel == all_channel) {
            if (!m->body.everyone) return;
            return add(s, std::string{}, std::move(*m));
        }
        if (!redis_channel.starts_with(channel_prefix) || m->body.everyone) return;
        std::string channel{redis_channel.substr(channel_prefix.size())};
        if (m->seq == 0) return add(s, channel, std::move(*m));
        live(s, channel, std::move(*m));
    }

    // A stored message, in Pub/Sub order: handed over if it is the next one, dropped if it was
    // already (recovered from history), held while what came before it is read from history.
    void live(shard& s, const std::string& channel, wire::message m) {
        auto& t = s.tracks[channel];
        if (t.catching_up) {
            t.held.push_back(std::move(m));
            return;
        }
        if (!t.epoch.empty() && t.epoch == m.epoch) {
            if (m.seq <= t.seq) return;
            if (m.seq > t.seq + 1) {
                t.held.push_back(std::move(m));
                return catch_up(s, channel, t);
            }
        } else if (!t.epoch.empty()) {
            spdlog::warn("redis engine: channel {} has a new epoch ({} after {}): its history was lost", channel,
                         m.epoch, t.epoch);
            if (options.metrics) observability::metrics::add(options.metrics->engine_gaps);
        }
        t.epoch = m.epoch;
        t.seq = m.seq;
        add(s, channel, std::move(m));
    }

    // Reads what `channel` missed since the node's last seq, then hands it and the held messages over.
    void catch_up(shard& s, const std::string& channel, track& t) {
        t.catching_up = true;
        s.commands->submit({"EVALSHA", read_sha, "3", meta_key(channel), stream_key(channel), keys_key(channel),
                            t.epoch, std::to_string(t.seq), "1000", epochs.next(), meta_ttl},
                           [this, &s, channel](redis::reply r) {
                               if (stopping.load()) return;
                               auto page = page_of(r, channel);
                               s.pubsub->post([this, &s, channel, page = std::move(page)]() mutable {
                                   caught_up(s, channel, std::move(page));
                               });
                           });
    }

    void caught_up(shard& s, const std::string& channel, util::result<history_page> page) {
        const auto it = s.tracks.find(channel);
        if (it == s.tracks.end()) return;  // no longer held here
        auto& t = it->second;
        if (!page) {
            spdlog::warn("redis engine: channel {} could not be caught up: {}", channel, page.message());
        } else if (page->top.epoch != t.epoch || !page->recovered) {
            spdlog::warn("redis engine: channel {} lost events this node could not recover (seq {} to {})", channel,
                         t.seq, page->top.seq);
            if (options.metrics) observability::metrics::add(options.metrics->engine_gaps);
        }
        if (page && page->top.epoch == t.epoch) {
            for (auto& e : page->events) {
                if (e.seq <= t.seq) continue;
                publication p;
                p.event = e.event;
                p.channels = {channel};
                p.history = true;
                s.pending.pubs.push_back(std::move(p));
                s.pending.framed.push_back({appended{position{t.epoch, e.seq}, std::move(e.message)}});
                s.pending.echoes.emplace_back(0, 0);
                t.seq = e.seq;
            }
            if (page->events.size() == 1000 && page->recovered) {
                flush(s);
                return catch_up(s, channel, t);  // more to read
            }
        }
        t.catching_up = false;
        auto held = std::move(t.held);
        t.held.clear();
        if (!page || !page->recovered || page->top.epoch != t.epoch) {
            // What could not be read is lost to this node: carry on from the held messages.
            if (!held.empty()) {
                t.epoch = held.front().epoch;
                t.seq = held.front().seq - 1;
            }
        }
        for (auto& m : held) {
            auto& again = s.tracks[channel];
            if (again.catching_up) {
                again.held.push_back(std::move(m));
                continue;
            }
            live(s, channel, std::move(m));
        }
        flush(s);
    }

    void add(shard& s, const std::string& channel, wire::message m) {
        publication p;
        const bool mine = m.body.origin == options.node_id;
        p.everyone = m.body.everyone;
        p.ordered = m.body.ordered;
        p.history = m.seq > 0;
        p.except_user = std::move(m.body.except_user);
        p.except_connection = mine ? m.body.except_connection : 0;
        auto e = event_of(m.body);
        std::vector<appended> framed;
        if (!p.everyone) {
            const position at{m.epoch, m.seq};
            framed.push_back(appended{at, channel_message(*e, channel, at)});
            p.channels = {channel};
        }
        p.event = std::move(e);
        s.pending.pubs.push_back(std::move(p));
        s.pending.framed.push_back(std::move(framed));
        s.pending.echoes.emplace_back(mine ? m.body.token : 0, m.body.index);
    }

    void flush(shard& s) {
        if (s.pending.pubs.empty()) return;
        auto routed = std::make_shared<routed_batch>();
        routed->batch = std::make_shared<const std::vector<publication>>(std::move(s.pending.pubs));
        routed->channels = std::move(s.pending.framed);
        auto echoes = std::move(s.pending.echoes);
        s.pending = burst{};
        // This node's own publishes among them, looked up once for the hand-over and the echo.
        std::vector<std::shared_ptr<waiting>> mine(echoes.size());
        for (std::size_t i = 0; i < echoes.size(); ++i) {
            if (echoes[i].first != 0) mine[i] = waiting_of(echoes[i].first);
        }
        delivery.deliver(
            routed,
            [this, mine, echoes = std::move(echoes)](const std::vector<std::size_t>& delivered) {
                for (std::size_t i = 0; i < mine.size() && i < delivered.size(); ++i) {
                    if (mine[i]) echoed(mine[i], echoes[i].second, delivered[i]);
                }
            },
            true);
        for (const auto& w : mine) {
            if (w) handed_over(*w);
        }
    }

    void on_down(shard& s) {
        const std::lock_guard lock{interest_mutex};
        for (auto& [name, active] : interest) {
            if (&shard_for(name) == &s) active = false;
        }
    }

    // Subscribed again after a loss: what each held channel missed meanwhile is read from
    // history and handed over before anything newer.
    void on_up(shard& s) {
        {
            const std::lock_guard lock{interest_mutex};
            for (auto& [name, active] : interest) {
                if (&shard_for(name) == &s) active = true;
            }
        }
        for (auto& [channel, t] : s.tracks) {
            if (!t.epoch.empty() && !t.catching_up) catch_up(s, channel, t);
        }
        users_soon.store(true);  // what was lost meanwhile, or lost with Redis's data
    }

    // ---- cluster ----

    std::string publish_verb(const shard& s) const { return s.pubsub->sharded() ? "SPUBLISH" : "PUBLISH"; }

    void on_request(handler h) override {
        const std::lock_guard lock{surveys_mutex};
        request_handler = std::make_shared<const handler>(std::move(h));
    }

    // "<f0><sep><f1><sep><f2><sep><f3><sep><rest>": the five fields of a control or reply message
    // (sep '\n') or of a registry entry (sep '\t'); false when there are fewer.
    static bool split_fields(std::string_view bytes, char sep, std::array<std::string_view, 5>& out) {
        for (std::size_t i = 0; i < 4; ++i) {
            const auto at = bytes.find(sep);
            if (at == std::string_view::npos) return false;
            out[i] = bytes.substr(0, at);
            bytes.remove_prefix(at + 1);
        }
        out[4] = bytes;
        return true;
    }

    void survey(std::string kind, std::string args, survey_done done) override {
        auto& s = *shards.front();
        if (!s.commands->up() && !s.commands->last_error().empty()) {
            return done(util::error{"redis unreachable: " + s.commands->last_error()});
        }
        const auto id = next_token.fetch_add(1, std::memory_order_relaxed);
        {
            const std::lock_guard lock{surveys_mutex};
            surveys.emplace(id, survey_state{std::move(done), {}, -1, std::chrono::steady_clock::now()});
        }
        auto message = "Q\n" + std::to_string(id) + "\n" + options.node_id + "\n" + kind + "\n" + args;
        s.commands->submit({publish_verb(s), control_channel, std::move(message)}, [this, id](redis::reply r) {
            std::optional<survey_state> finished;
            {
                const std::lock_guard lock{surveys_mutex};
                const auto it = surveys.find(id);
                if (it == surveys.end()) return;
                if (!r.ok()) {
                    auto failed = std::move(it->second);
                    surveys.erase(it);
                    return failed.done(redis_error(r));
                }
                it->second.expected = r.integer();
                if (static_cast<long long>(it->second.answers.size()) >= it->second.expected) {
                    finished = std::move(it->second);
                    surveys.erase(it);
                }
            }
            if (finished) finished->done(std::move(finished->answers));
        });
    }

    // A request from any node (this one too): this node's handler answers it to the asker.
    void requested(std::string_view bytes) {
        std::array<std::string_view, 5> f{};
        std::shared_ptr<const handler> answer_with;
        {
            const std::lock_guard lock{surveys_mutex};
            answer_with = request_handler;
        }
        if (!split_fields(bytes, '\n', f) || f[0] != "Q" || !answer_with) return;
        auto& s = *shards.front();
        const auto to = options.prefix + ":reply:" + std::string{f[2]};
        auto head = "R\n" + std::string{f[1]} + "\n" + options.node_id + "\n-\n";
        (*answer_with)(f[3], f[4], [this, &s, to, head = std::move(head)](const std::string& answer) {
            if (stopping.load()) return;
            s.commands->submit({publish_verb(s), to, head + answer}, {});
        });
    }

    void answered(std::string_view bytes) {
        std::array<std::string_view, 5> f{};
        if (!split_fields(bytes, '\n', f) || f[0] != "R") return;
        std::uint64_t id = 0;
        std::from_chars(f[1].data(), f[1].data() + f[1].size(), id);
        std::optional<survey_state> finished;
        {
            const std::lock_guard lock{surveys_mutex};
            const auto it = surveys.find(id);
            if (it == surveys.end()) return;  // late: the survey gave up on it
            it->second.answers.emplace_back(f[4]);
            if (it->second.expected >= 0 && static_cast<long long>(it->second.answers.size()) >= it->second.expected) {
                finished = std::move(it->second);
                surveys.erase(it);
            }
        }
        if (finished) finished->done(std::move(finished->answers));
    }

    void sweep_surveys() {
        std::vector<survey_state> late;
        const auto cutoff = std::chrono::steady_clock::now() - options.timeout;
        {
            const std::lock_guard lock{surveys_mutex};
            for (auto it = surveys.begin(); it != surveys.end();) {
                if (it->second.since < cutoff) {
                    late.push_back(std::move(it->second));
                    it = surveys.erase(it);
                } else {
                    ++it;
                }
            }
        }
        for (auto& l : late) l.done(std::move(l.answers));
    }

    static std::int64_t unix_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // This node's entry in the registry: "<address>\t<connections>\t<users>\t<started ms>\t<updated ms>".
    void refresh_registry() {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_refresh || !options.self) return;
        next_refresh = now + options.registry_period;
        const auto me = options.self();
        auto entry = me.address + "\t" + std::to_string(me.connections) + "\t" + std::to_string(me.users) + "\t" +
                     std::to_string(me.started_ms) + "\t" + std::to_string(unix_ms());
        shards.front()->commands->submit({"HSET", nodes_key, options.node_id, std::move(entry)}, {});
    }

    void nodes(nodes_done done) override {
        auto& s = *shards.front();
        const auto stale_ms = 3 * options.registry_period.count();
        s.commands->submit({"HGETALL", nodes_key}, [this, &s, stale_ms, done = std::move(done)](redis::reply r) {
            if (!r.ok() || !r.is_array()) {
                return done(redis_error(r));
            }
            std::vector<node_info> live;
            const auto now = unix_ms();
            for (std::size_t i = 0; i + 1 < r.size(); i += 2) {
                node_info n;
                n.id = std::string{redis::str_of(r.element(i))};
                std::array<std::string_view, 5> f{};
                if (!split_fields(redis::str_of(r.element(i + 1)), '\t', f)) continue;
                n.address = std::string{f[0]};
                std::from_chars(f[1].data(), f[1].data() + f[1].size(), n.connections);
                std::from_chars(f[2].data(), f[2].data() + f[2].size(), n.users);
                std::from_chars(f[3].data(), f[3].data() + f[3].size(), n.started_ms);
                std::from_chars(f[4].data(), f[4].data() + f[4].size(), n.updated_ms);
                if (now - n.updated_ms > stale_ms) {
                    if (!stopping.load()) s.commands->submit({"HDEL", nodes_key, n.id}, {});  // gone
                    continue;
                }
                live.push_back(std::move(n));
            }
            done(std::move(live));
        });
    }

    // The canary: every registry period each shard publishes the time on this node's canary
    // channel; its return measures the real Pub/Sub path (zena_engine_roundtrip_seconds).
    void canary(shard& s) {
        const auto now = std::chrono::steady_clock::now();
        if (s.canary_out) {
            if (now - s.canary_sent < options.timeout) return;
            s.canary_out = false;  // lost
            if (options.metrics) observability::metrics::add(options.metrics->engine_canaries_lost);
        }
        if (now - s.canary_sent < options.registry_period || !s.pubsub->up()) return;
        s.canary_sent = now;
        s.canary_out = true;
        s.commands->submit(
            {publish_verb(s), canary_channel,
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count())},
            {});
    }

    void canary_back(shard& s, std::string_view bytes) {
        std::int64_t sent_us = 0;
        std::from_chars(bytes.data(), bytes.data() + bytes.size(), sent_us);
        const auto now = std::chrono::steady_clock::now();
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
        s.canary_out = false;
        s.canary_back_ms.store(now_us / 1000, std::memory_order_relaxed);
        if (options.metrics && sent_us > 0 && now_us >= sent_us) {
            options.metrics->engine_roundtrip_us.store(static_cast<std::uint64_t>(now_us - sent_us),
                                                       std::memory_order_relaxed);
        }
    }

    // ---- presence ----

    std::string presence_key(std::string_view channel, char kind) const {
        return options.prefix + ":{" + std::string(channel) + "}:p" + kind;
    }
    std::string deployment_client(std::string_view client) const { return options.node_id + "/" + std::string(client); }

    redis::pipeline::args presence_command(const std::string& sha, std::string_view channel) const {
        return {
            "EVALSHA", sha, "3", presence_key(channel, 'c'), presence_key(channel, 'e'), presence_key(channel, 'u')};
    }

    static void answer_bool(const redis::reply& r, const membership_done& done) {
        if (!r.ok()) return done(redis_error(r));
        done(r.integer() == 1);
    }

    void join(std::string_view channel, std::string_view client, std::string_view user, std::chrono::milliseconds ttl,
              membership_done done) override {
        auto command = presence_command(join_sha, channel);
        const auto id = deployment_client(client);
        auto effective = ttl;
        if (ttl > options.presence_ttl) {
            effective = options.presence_ttl;
            const std::lock_guard lock{held_mutex};
            held[std::string{channel}][id] = std::string{user};
        }
        command.insert(command.end(),
                       {id, std::string{user}, std::to_string(std::max<std::int64_t>(1, effective.count()))});
        shard_for(channel).commands->submit(command,
                                            [done = std::move(done)](redis::reply r) { answer_bool(r, done); });
    }

    void leave(std::string_view channel, std::string_view client, membership_done done) override {
        const auto id = deployment_client(client);
        {
            const std::lock_guard lock{held_mutex};
            if (const auto it = held.find(std::string{channel}); it != held.end()) {
                it->second.erase(id);
                if (it->second.empty()) held.erase(it);
            }
        }
        auto command = presence_command(leave_sha, channel);
        command.push_back(id);
        shard_for(channel).commands->submit(command,
                                            [done = std::move(done)](redis::reply r) { answer_bool(r, done); });
    }

    void query(std::string_view channel, query_done done) override {
        auto command = presence_command(query_sha, channel);
        command.emplace_back("0");
        shard_for(channel).commands->submit(command, [done = std::move(done)](redis::reply r) {
            if (!r.ok() || !r.is_array() || r.size() == 0) {
                return done(redis_error(r));
            }
            presence_state state;
            state.clients = static_cast<std::size_t>(integer_of(r.element(0)));
            for (std::size_t i = 1; i + 1 < r.size(); i += 2) {
                state.users.emplace(std::string{redis::str_of(r.element(i))},
                                    static_cast<std::size_t>(integer_of(r.element(i + 1))));
            }
            done(std::move(state));
        });
    }

    void users(std::string_view channel, count_done done) override {
        auto command = presence_command(query_sha, channel);
        command.emplace_back("1");
        shard_for(channel).commands->submit(command, [done = std::move(done)](redis::reply r) {
            if (!r.ok()) return done(redis_error(r));
            done(static_cast<std::size_t>(r.integer()));
        });
    }

    // The entries held until their leave, joined again (pipelined) every third of the TTL.
    void refresh_presence() {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_presence_refresh) return;
        next_presence_refresh = now + options.presence_ttl / 3;
        std::vector<std::vector<redis::pipeline::args>> commands(shards.size());
        {
            const std::lock_guard lock{held_mutex};
            for (const auto& [channel, clients] : held) {
                const auto index = redis_engine::shard_of(channel, shards.size());
                for (const auto& [client, user] : clients) {
                    auto command = presence_command(join_sha, channel);
                    command.insert(command.end(), {client, user, std::to_string(options.presence_ttl.count())});
                    commands[index].push_back(std::move(command));
                }
            }
        }
        for (std::size_t i = 0; i < shards.size(); ++i) {
            if (!commands[i].empty()) shards[i]->commands->submit(commands[i], {});
        }
    }

    // ---- user presence for the backend ----

    redis::pipeline::args online_command(const std::string& sha) const {
        return {"EVALSHA", sha, "5", online_keys[0], online_keys[1], online_keys[2], online_keys[3], online_keys[4]};
    }

    std::size_t shard_of_user(std::string_view user) const { return redis_engine::shard_of(user, shards.size()); }

    // The users an arrive script answers were announced by this node.
    redis::pipeline::callback announce_online() {
        return [this](const redis::reply& r) {
            if (!r.ok() || !r.is_array() || !options.on_user) return;
            for (std::size_t i = 0; i < r.size(); ++i) options.on_user(redis::str_of(r.element(i)), true);
        };
    }

    // Submitted under users_mutex, as restate()'s commands: a restatement never re-adds a user
    // after its departure.
    void user_here(std::string_view user, bool present) {
        if (!options.on_user) return;
        const std::lock_guard lock{users_mutex};
        if (present) {
            users_here.emplace(user);
        } else if (const auto it = users_here.find(user); it != users_here.end()) {
            users_here.erase(it);
        }
        auto command = online_command(present ? arrive_sha : depart_sha);
        if (present) {
            command.insert(command.end(), {options.node_id, presence_ttl_ms, std::string{user}});
            shards[shard_of_user(user)]->commands->submit(command, announce_online());
        } else {
            command.insert(command.end(), {options.node_id, std::string{user}, offline_grace_ms});
            shards[shard_of_user(user)]->commands->submit(command, {});
        }
    }

    // The node's heartbeat on every shard, every third of presence_ttl; after a shard came back,
    // at once and with the users stated again (transitions may have been lost meanwhile).
    void refresh_users() {
        const auto now = std::chrono::steady_clock::now();
        const bool soon = users_soon.exchange(false);
        if (!options.on_user || (now < next_users_refresh && !soon)) return;
        next_users_refresh = now + options.presence_ttl / 3;
        if (soon) return restate(std::vector<bool>(shards.size(), true));
        for (std::size_t i = 0; i < shards.size(); ++i) {
            auto command = online_command(heartbeat_sha);
            command.insert(command.end(), {options.node_id, presence_ttl_ms});
            shards[i]->commands->submit(command, [this, i](const redis::reply& r) {
                if (!r.ok() || r.integer() != 1) return;
                std::vector<bool> which(shards.size(), false);  // Redis did not know this node
                which[i] = true;
                restate(which);
            });
        }
    }

    // What Redis holds for this node on the shards `which` marks replaced by the users it holds
    // now (arrive scripts of up to 256 users), in one pass over them; the users Redis had
    // forgotten are announced online again.
    void restate(const std::vector<bool>& which) {
        constexpr std::size_t k_per_script = 256;
        constexpr std::size_t k_head = 10;  // EVALSHA sha 5 keys... node ttl
        std::vector<std::vector<redis::pipeline::args>> commands(shards.size());
        for (std::size_t i = 0; i < shards.size(); ++i) {
            if (!which[i]) continue;
            commands[i].push_back(online_command(reset_sha));
            commands[i].back().insert(commands[i].back().end(), {options.node_id, presence_ttl_ms, offline_grace_ms});
        }
        const std::lock_guard lock{users_mutex};
        for (const auto& user : users_here) {
            auto& batch = commands[shard_of_user(user)];
            if (batch.empty()) continue;
            if (batch.size() == 1 || batch.back().size() >= k_head + k_per_script) {
                batch.push_back(online_command(arrive_sha));
                batch.back().insert(batch.back().end(), {options.node_id, presence_ttl_ms});
            }
            batch.back().push_back(user);
        }
        for (std::size_t i = 0; i < shards.size(); ++i) {
            if (commands[i].empty()) continue;
            std::vector<redis::pipeline::callback> callbacks(commands[i].size());
            for (std::size_t c = 1; c < callbacks.size(); ++c) callbacks[c] = announce_online();
            shards[i]->commands->submit(commands[i], std::move(callbacks));
        }
    }

    // The shard's users due (no connection anywhere for the grace, or their node gone), announced
    // offline by whichever node's script takes them first.
    void settle(shard& s) {
        const auto now = std::chrono::steady_clock::now();
        if (!options.on_user || now < s.next_settle || !s.commands->up()) return;
        s.next_settle = now + options.settle_period;
        auto command = online_command(settle_sha);
        command.insert(command.end(), {online_set_prefix, "1000"});
        s.commands->submit(command, [this](const redis::reply& r) {
            if (!r.ok() || !r.is_array()) return;
            for (std::size_t i = 0; i < r.size(); ++i) options.on_user(redis::str_of(r.element(i)), false);
        });
    }

    // ---- history ----

    void append(std::string_view channel, std::shared_ptr<const event> e, const history_limits& limits,
                append_done done) override {
        if (!e) return done(util::error{"no event to store"});
        if (e->message.delivery == ws::delivery_class::ephemeral) {
            return done(util::error{"an ephemeral event is never stored"});
        }
        wire::body b;
        b.delivery = e->message.delivery;
        b.latest_key = e->message.latest_key;
        b.origin = options.node_id;
        b.type = e->type;
        b.payload = e->payload;
        publication p;
        p.event = e;
        p.limits = limits;
        std::string name{channel};
        shard_for(channel).commands->submit_encoded(
            append_command(channel, wire::encode(b), p, false, false),
            [e, name, done = std::move(done)](redis::reply r) {
                if (!r.ok()) return done(redis_error(r));
                if (!r.is_array() || r.size() != 2) return done(util::error{"redis answered an unexpected append"});
                const position at{std::string{redis::str_of(r.element(1))},
                                  static_cast<std::uint64_t>(integer_of(r.element(0)))};
                done(appended{at, channel_message(*e, name, at)});
            });
    }

    // A read for a channel this node is subscribing to waits for the subscription.
    void when_subscribed(std::string_view channel, std::function<void(bool)> then) {
        bool wanted = false;
        {
            const std::lock_guard lock{interest_mutex};
            const auto it = interest.find(channel);
            if (it != interest.end()) {
                if (it->second) return then(true);
                wanted = true;
            }
        }
        if (!wanted) return then(true);
        shard_for(channel).pubsub->subscribe(pubsub_channel(channel), std::move(then));
    }

    void read_script(std::string_view channel, const std::optional<position>& since, std::size_t limit,
                     read_done done) {
        std::string name{channel};
        auto command = redis::pipeline::args{"EVALSHA",
                                             read_sha,
                                             "3",
                                             meta_key(channel),
                                             stream_key(channel),
                                             keys_key(channel),
                                             since ? since->epoch : std::string{},
                                             since ? std::to_string(since->seq) : std::string{"-1"},
                                             std::to_string(limit),
                                             epochs.next(),
                                             meta_ttl};
        auto& s = shard_for(channel);
        when_subscribed(channel, [&s, name, command = std::move(command), done = std::move(done)](bool ok) mutable {
            if (!ok) return done(util::error{"redis Pub/Sub unreachable"});
            s.commands->submit(command, [name, done = std::move(done)](redis::reply r) { done(page_of(r, name)); });
        });
    }

    void read(std::string_view channel, std::optional<position> since, std::size_t limit, read_done done) override {
        read_script(channel, since, limit, std::move(done));
    }

    void top(std::string_view channel, top_done done) override {
        read_script(channel, std::nullopt, 0, [done = std::move(done)](util::result<history_page> page) {
            if (!page) return done(util::error{page.message()});
            done(std::move(page->top));
        });
    }
};

redis_engine::redis_engine(redis_engine_options options, hub::hub_set& hubs)
    : impl_(std::make_unique<impl>(std::move(options), hubs)) {}

redis_engine::~redis_engine() = default;

broker& redis_engine::broker() { return *impl_; }
cluster& redis_engine::cluster() { return *impl_; }
presence& redis_engine::presence() { return *impl_; }
void redis_engine::user_here(std::string_view user, bool present) { impl_->user_here(user, present); }
history& redis_engine::history() { return *impl_; }

std::string redis_engine::trouble() const {
    std::string out;
    for (std::size_t i = 0; i < impl_->shards.size(); ++i) {
        const auto& s = *impl_->shards[i];
        if (s.commands->up() && s.pubsub->up()) {
            // Connected, but does a publish come back? A canary missing for three periods says no.
            const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count();
            const auto period = impl_->options.registry_period.count();
            auto back = s.canary_back_ms.load(std::memory_order_relaxed);
            if (back == 0) {
                back = std::chrono::duration_cast<std::chrono::milliseconds>(impl_->started.time_since_epoch()).count();
            }
            if (now_ms - back <= 3 * period + impl_->options.timeout.count()) continue;
            if (!out.empty()) out += "; ";
            out += "redis shard " + std::to_string(i) + ": no publish came back through Pub/Sub for " +
                   std::to_string(now_ms - back) + " ms";
            continue;
        }
        if (!out.empty()) out += "; ";
        out += "redis shard " + std::to_string(i) + " (" + impl_->options.shards[i].host + ":" +
               std::to_string(impl_->options.shards[i].port) + ") " +
               (s.commands->up() ? "Pub/Sub down" : "unreachable: " + s.commands->last_error());
    }
    return out;
}

}  // namespace zena::engine
