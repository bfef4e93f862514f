#pragma once
// The close-code table (ws/close_codes.hpp) as a JSON array, for the `zena-realtime codes`
// command, which the TypeScript client's test reads.

#include <string>

namespace zena::protocol {

std::string close_codes_json();

}  // namespace zena::protocol
