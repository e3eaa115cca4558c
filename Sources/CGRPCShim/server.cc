// The server half of the shim: one CallbackGenericService accepts every method and turns each
// call into callbacks to the owner (see CGRPCShim.h for the contract). The types are in
// server_types.h; this file wires them and holds the C interface.
#include <cstring>
#include <thread>

#include "server_types.h"
grpc::ServerGenericBidiReactor *maas_grpc_server::GenericService::CreateReactor(
    grpc::GenericCallbackServerContext *context) {
  auto *call = new maas_grpc_server_call(server_, context);
  call->Begin();
  return call;
}

void maas_grpc_server::CancelLiveCalls() {
  std::lock_guard<std::mutex> lock(calls_mu);
  for (maas_grpc_server_call *call : live_calls) call->Cancel();
}

// ---- C interface ----------------------------------------------------------------------------

extern "C" {

maas_grpc_server *maas_grpc_server_start(const char *address, const maas_grpc_options *options,
                                         const maas_grpc_server_callbacks *callbacks,
                                         void *server_context, char *error,
                                         size_t error_capacity) {
  auto report = [&](const std::string &message) {
    if (error && error_capacity > 0) {
      std::strncpy(error, message.c_str(), error_capacity - 1);
      error[error_capacity - 1] = '\0';
    }
  };
  maas_shim::AnchorCallbackQueue();
  auto server = std::make_unique<maas_grpc_server>(*callbacks, server_context, options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port);
  builder.RegisterCallbackGenericService(&server->service);
  if (options) {
    if (options->max_receive_message_bytes > 0)
      builder.SetMaxReceiveMessageSize(options->max_receive_message_bytes);
    if (options->max_send_message_bytes > 0)
      builder.SetMaxSendMessageSize(options->max_send_message_bytes);
    if (options->min_ping_interval_ms > 0)
      builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                 options->min_ping_interval_ms);
    if (options->max_concurrent_streams > 0)
      builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options->max_concurrent_streams);
  }
  maas_shim::ApplyCommonOptions(options, [&](const char *key, int value) {
    builder.AddChannelArgument(key, value);
  });
  // Connections are closed gently (GOAWAY; calls under way finish) after about five minutes, so
  // that callers resolve the service again and spread onto replicas added since they connected.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 60 * 1000);
  server->server = builder.BuildAndStart();
  if (!server->server || server->port == 0) {
    report(std::string("cannot listen on ") + address +
           ": the address is invalid or already in use");
    return nullptr;
  }
  return server.release();
}

int32_t maas_grpc_server_port(const maas_grpc_server *server) { return server->port; }

void maas_grpc_server_shutdown(maas_grpc_server *server, int64_t grace_ms) {
  if (server->shutdown_started.exchange(true)) {
    server->CancelLiveCalls();
    return;
  }
  // grpc::Server::Shutdown blocks until every call has completed, and completing a call needs
  // the owner's tasks to run, so it gets a thread of its own.
  std::thread([server, grace_ms] {
    if (grace_ms < 0) {
      server->server->Shutdown();
    } else {
      server->server->Shutdown(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(grace_ms));
    }
    server->server->Wait();
    server->callbacks.on_stopped(server->context);
  }).detach();
}

void maas_grpc_server_destroy(maas_grpc_server *server) { delete server; }

const char *maas_grpc_server_call_method(const maas_grpc_server_call *call, size_t *length) {
  const std::string &method = call->context()->method();
  *length = method.size();
  return method.data();
}

const char *maas_grpc_server_call_peer(const maas_grpc_server_call *call, size_t *length) {
  // peer() builds a new string each time; a thread-local keeps it alive for the rest of
  // on_call, which runs on this thread.
  static thread_local std::string peer;
  peer = call->context()->peer();
  *length = peer.size();
  return peer.data();
}

size_t maas_grpc_server_call_metadata(const maas_grpc_server_call *call,
                                      maas_grpc_metadata_entry *buffer, size_t capacity) {
  const auto &metadata = call->context()->client_metadata();
  size_t index = 0;
  for (const auto &pair : metadata) {
    if (index < capacity) {
      buffer[index] = {pair.first.data(), pair.first.size(),
                       reinterpret_cast<const uint8_t *>(pair.second.data()),
                       pair.second.size()};
    }
    ++index;
  }
  return index;
}

int64_t maas_grpc_server_call_timeout_ns(const maas_grpc_server_call *call) {
  return maas_shim::NanosecondsUntil(call->context()->deadline());
}

int maas_grpc_server_call_write(maas_grpc_server_call *call,
                                const maas_grpc_metadata *initial_metadata,
                                const uint8_t *bytes, size_t length) {
  return call->Write(initial_metadata, bytes, length);
}

int maas_grpc_server_call_finish(maas_grpc_server_call *call,
                                 const maas_grpc_metadata *initial_metadata,
                                 const uint8_t *last_message, size_t last_message_length,
                                 int32_t code, const char *message, size_t message_length,
                                 const maas_grpc_metadata *trailers) {
  grpc::Status status(static_cast<grpc::StatusCode>(code), std::string(message, message_length));
  return call->Finish(initial_metadata, last_message, last_message_length, trailers,
                      std::move(status));
}

void maas_grpc_server_call_request_reads(maas_grpc_server_call *call, int32_t count) {
  call->RequestReads(count);
}

void maas_grpc_server_call_release(maas_grpc_server_call *call) { call->Release(); }

}  // extern "C"
