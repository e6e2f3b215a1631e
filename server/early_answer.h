/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Answering a request from its headers alone. libsoup 3 reads a request's whole
// body before it writes any answer, even one decided from the headers (a wrong
// method, a missing token, a body over the limit, a Content-Length it cannot
// parse, which it then reads until the connection closes). These answers take
// the connection over instead: write the answer, stop sending, drop what the
// client still sends for a moment so that it can read the answer, and close.
#pragma once

#include <libsoup/soup.h>

#include <string>

namespace vs::server {

// Answers msg with status, the response headers already set on msg and body
// (Content-Type type), then closes the connection. No byte of the request
// body is kept: at most kDrainBytes are read and dropped, for at most
// kDrainSeconds. msg may be freed by the time this returns.
void answer_before_body(SoupServerMessage* msg, int status, const char* type,
                        const std::string& body);

constexpr unsigned kDrainSeconds = 2;
constexpr gsize kDrainBytes = 64 << 20;

}  // namespace vs::server
