#pragma once
// Which upstream destinations each client event type goes to (upstream.routes).
//
//   "sync.request=webhook+redis,thread.view=redis,typing.start=none,*=webhook"
//
// Each item is `<event type or *>=<destinations>`, destinations joined by '+': `webhook`,
// `redis` (the Redis stream), or `none`. A type without an item of its own takes the `*` item;
// with no `*` item it goes nowhere. An empty specification sends every event to every
// configured destination. Documented in docs/upstream.md.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zena::upstream {

enum destination : unsigned { k_to_webhook = 1U, k_to_redis = 2U };

class routes {
public:
    // Every event to `destinations` (a mask of destination values).
    static routes to_all(unsigned destinations);
    // nullopt, with `error` set, when the specification is malformed.
    static std::optional<routes> parse(std::string_view spec, std::string& error);

    unsigned of(std::string_view type) const;
    // Every destination some route uses.
    unsigned used() const;
    // The event types named (not `*`), to check against the catalog.
    std::vector<std::string> named_types() const;

private:
    std::vector<std::pair<std::string, unsigned>> by_type_;
    unsigned fallback_ = 0;  // the `*` item
};

}  // namespace zena::upstream
