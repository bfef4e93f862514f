#pragma once
// The Asio and Beast headers of the layers that use them (ws, session, upstream, net, app), in
// one place: the precompiled header of their libraries. Not a forward header: it is the whole
// of each. The folders that may include Asio or Beast are the ones scripts/check_layers.py
// names; Asio and Beast themselves are compiled once, in ws/asio_impl.cpp.

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
