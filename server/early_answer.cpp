// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/early_answer.h"

#include <array>
#include <memory>

namespace vs::server {

namespace {

// One taken-over connection, from the answer to the close.
struct Closing {
  GIOStream* stream = nullptr;
  GSocket* socket = nullptr;  // owned by stream (libsoup's "GSocket" data)
  GCancellable* cancellable = g_cancellable_new();
  guint timer = 0;
  std::string answer;
  gsize drained = 0;
  std::array<char, 64 * 1024> sink;

  ~Closing() {
    if (timer) g_source_remove(timer);
    g_io_stream_close(stream, nullptr, nullptr);
    g_object_unref(stream);
    g_object_unref(cancellable);
  }
};

void drain(std::unique_ptr<Closing> closing);

void on_drained(GObject* source, GAsyncResult* result, gpointer data) {
  std::unique_ptr<Closing> closing(static_cast<Closing*>(data));
  const gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, nullptr);
  if (n <= 0) return;  // the client is done, gone, or out of time
  closing->drained += static_cast<gsize>(n);
  if (closing->drained < kDrainBytes) drain(std::move(closing));
}

void drain(std::unique_ptr<Closing> closing) {
  GInputStream* in = g_io_stream_get_input_stream(closing->stream);
  Closing* raw = closing.release();
  g_input_stream_read_async(in, raw->sink.data(), raw->sink.size(), G_PRIORITY_DEFAULT,
                            raw->cancellable, on_drained, raw);
}

void on_written(GObject* source, GAsyncResult* result, gpointer data) {
  std::unique_ptr<Closing> closing(static_cast<Closing*>(data));
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, nullptr, nullptr)) return;
  // The end of the answer; a client still sending its body reads it before
  // the connection closes (closing with unread data would reset it, and the
  // reset can discard the answer on the client's side).
  if (closing->socket) g_socket_shutdown(closing->socket, FALSE, TRUE, nullptr);
  closing->timer = g_timeout_add_seconds(
      kDrainSeconds,
      [](gpointer c) {
        auto* closing = static_cast<Closing*>(c);
        closing->timer = 0;
        g_cancellable_cancel(closing->cancellable);
        return G_SOURCE_REMOVE;
      },
      closing.get());
  drain(std::move(closing));
}

}  // namespace

void answer_before_body(SoupServerMessage* msg, int status, const char* type,
                        const std::string& body) {
  auto closing = std::make_unique<Closing>();
  closing->answer = "HTTP/1.1 " + std::to_string(status) + " " + soup_status_get_phrase(status) +
                    "\r\nContent-Type: " + type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
  soup_message_headers_foreach(
      soup_server_message_get_response_headers(msg),
      [](const char* name, const char* value, gpointer answer) {
        *static_cast<std::string*>(answer) += std::string(name) + ": " + value + "\r\n";
      },
      &closing->answer);
  closing->answer += "\r\n" + body;

  g_object_ref(msg);
  closing->stream = soup_server_message_steal_connection(msg);
  g_object_unref(msg);
  if (!closing->stream) return;
  closing->socket = static_cast<GSocket*>(g_object_get_data(G_OBJECT(closing->stream), "GSocket"));
  GOutputStream* out = g_io_stream_get_output_stream(closing->stream);
  Closing* raw = closing.release();
  g_output_stream_write_all_async(out, raw->answer.data(), raw->answer.size(), G_PRIORITY_DEFAULT,
                                  raw->cancellable, on_written, raw);
}

}  // namespace vs::server
