// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/http_util.h"

#include <gio/gio.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace vs::server {

std::optional<int64_t> parse_int(const std::string& s, int64_t min, int64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return std::nullopt;
  return value;
}

std::optional<double> parse_double(const std::string& s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<std::string> static_file_name(const std::string& path) {
  if (path == "/") return std::string("index.html");
  if (path.size() < 2 || path.size() > 64 || path[0] != '/' || path[1] == '.') return std::nullopt;
  const std::string name = path.substr(1);
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return std::nullopt;
  }
  if (name.find("..") != std::string::npos) return std::nullopt;
  return name;
}

static bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

const char* content_type_for(const std::string& name) {
  if (ends_with(name, ".html")) return "text/html; charset=utf-8";
  if (ends_with(name, ".css")) return "text/css; charset=utf-8";
  if (ends_with(name, ".js")) return "text/javascript; charset=utf-8";
  if (ends_with(name, ".svg")) return "image/svg+xml";
  if (ends_with(name, ".png")) return "image/png";
  if (ends_with(name, ".json")) return "application/json";
  return "application/octet-stream";
}

const char* picture_type(const uint8_t* data, size_t size) {
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return size >= at + n && memcmp(data + at, magic, n) == 0;
  };
  if (starts("\xff\xd8\xff", 3)) return "image/jpeg";
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "image/png";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "image/gif";
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "image/webp";
  if (starts("BM", 2)) return "image/bmp";
  return nullptr;
}

bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& longer = a.size() >= b.size() ? a : b;
  for (size_t i = 0; i < longer.size(); i++) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

void run_on_main(std::function<void()> f) {
  auto* heap = new std::function<void()>(std::move(f));
  g_main_context_invoke_full(
      nullptr, G_PRIORITY_DEFAULT,
      [](gpointer data) {
        (*static_cast<std::function<void()>*>(data))();
        return G_SOURCE_REMOVE;
      },
      heap, [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
}

bool is_loopback(const std::string& address) {
  if (address == "localhost") return true;
  GInetAddress* inet = g_inet_address_new_from_string(address.c_str());
  if (!inet) return false;
  const bool loopback = g_inet_address_get_is_loopback(inet);
  g_object_unref(inet);
  return loopback;
}

}  // namespace vs::server
