#include "protocol/json_reader.hpp"

namespace zena::protocol {

simdjson::dom::parser& thread_json_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

std::string minify_json(simdjson::dom::element element) { return simdjson::minify(element); }

}  // namespace zena::protocol
