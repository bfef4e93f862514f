#pragma once
// permessage-deflate (RFC 7692), as this server speaks it: no context takeover in either
// direction. The server says so in every response (§7.1.1.1 and §7.1.1.2 let it), so that
// - a broadcast is compressed once and the same bytes go to every connection that negotiated
//   the extension, whatever thread it is on;
// - a client message is inflated on its own, by one inflater per thread: a connection holds no
//   zlib state (a context-takeover window is 32 KiB per connection and direction).
//
// Threading: negotiate() is a pure function; compress() and inflate() use a zlib stream per
// calling thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace zena::ws {

struct deflate_agreement {
    std::string response;  // the Sec-WebSocket-Extensions value to answer with
    // Whether this connection gets compressed frames: false when the client limited the
    // server's window below the one the shared compressor uses (it then gets plain frames,
    // which the extension allows message by message).
    bool compress_outgoing = true;
};

// Picks the first acceptable permessage-deflate offer in a Sec-WebSocket-Extensions value;
// nullopt when there is none (the connection then runs without the extension). An offer with
// an unknown or repeated parameter or an out-of-range value is declined, as §5 asks.
std::optional<deflate_agreement> negotiate_deflate(std::string_view extensions_header);

// Messages shorter than this go uncompressed: deflate would not pay for its block overhead.
inline constexpr std::size_t k_compress_threshold = 64;

// The raw DEFLATE of one message with the final 00 00 ff ff removed (§7.2.1), window 2^15.
std::string compress_message(std::string_view payload);

enum class inflate_status { ok, too_large, corrupt };

// Inflates one message (§7.2.2) into `out` (replacing its contents), stopping with too_large as
// soon as the output would pass `max_bytes`: a small message cannot expand without bound.
inflate_status inflate_message(std::string_view compressed, std::size_t max_bytes, std::string& out);

}  // namespace zena::ws
