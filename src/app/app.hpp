#pragma once

#include <optional>
#include <string>
// The program: wires settings -> token verifier -> metrics -> server (hubs, API, listeners),
// and owns start and stop. main() only parses the command line and calls run().

#include "config/settings.hpp"
#include "protocol/catalog.hpp"

namespace zena::app {

// Runs the server until SIGTERM/SIGINT and the drain; returns the process exit code.
// `dev_mode` only changes what is printed at start (the credentials and a walk-through).
int run(const config::settings& settings, const protocol::catalog& catalog, bool dev_mode);

// The catalog named by the settings (catalog.path), or the one compiled in; nullopt with
// `error` when it cannot be read or is invalid.
std::optional<protocol::catalog> load_catalog(const config::settings& settings, std::string& error);

}  // namespace zena::app
