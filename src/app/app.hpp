#pragma once
// The program: wires settings -> token verifier -> metrics -> server (hubs, API, listeners),
// and owns start and stop. main() only parses the command line and calls run().

#include "config/settings.hpp"

namespace zena::app {

// Runs the server until SIGTERM/SIGINT and the drain; returns the process exit code.
// `dev_mode` only changes what is printed at start (the credentials and a walk-through).
int run(const config::settings& settings, bool dev_mode);

}  // namespace zena::app
