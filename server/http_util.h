/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Small pieces of the HTTP server that need no server: request parameters,
// and the checks on what a request may name.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vs::server {

// The decimal integer s in [min, max]; nullopt for anything else (signs,
// spaces, overflow, trailing text).
std::optional<int64_t> parse_int(const std::string& s, int64_t min, int64_t max);

// The finite number s; nullopt for anything else.
std::optional<double> parse_double(const std::string& s);

// The name of a file directly in the web root that a request path asks for
// ("/" is index.html), or nullopt for anything else: no second slash, no
// "..", no hidden file, nothing but [A-Za-z0-9._-].
std::optional<std::string> static_file_name(const std::string& path);

// The Content-Type of a static file, by its extension.
const char* content_type_for(const std::string& name);

// The Content-Type of a picture a browser shows, by its first bytes (JPEG,
// PNG, GIF, WebP, BMP); nullptr for anything else, whatever its name says.
const char* picture_type(const uint8_t* data, size_t size);

// Compares in time that depends on the lengths only, so a token cannot be
// guessed byte by byte from response times.
bool same_secret(const std::string& a, const std::string& b);

// Runs f once on the default main context, where libsoup wants its messages
// touched; callable from any thread.
void run_on_main(std::function<void()> f);

// Whether a bind address is loopback (127.0.0.0/8, ::1, "localhost").
bool is_loopback(const std::string& address);

}  // namespace vs::server
