#pragma once
// The one way the server parses JSON from the network. simdjson validates the whole document
// (structure and UTF-8), which is why untrusted input is parsed with the DOM API and not On
// Demand: nothing half-checked is ever passed through. Only files that parse include this
// header (simdjson.h is large), so the hub and the transport never see it.

#include <string>

#include <simdjson.h>

namespace zena::protocol {

// The thread's reusable DOM parser. Elements it returns live until the next parse on the same
// thread.
simdjson::dom::parser& thread_json_parser();

// Minified JSON text of an element: the canonical form the server forwards.
std::string minify_json(simdjson::dom::element element);

}  // namespace zena::protocol
