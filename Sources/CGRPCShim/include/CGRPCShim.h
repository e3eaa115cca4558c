// CGRPCShim: grpc C++'s generic callback API behind a plain-C interface.
//
// The shim moves bytes and knows no message types. A server accepts every method through one
// CallbackGenericService and hands each call to its owner (the Swift transport) as a stream of
// callbacks; a client opens a generic bidirectional call for every RPC kind, since the caller's
// transport cannot tell the kinds apart either.
//
// Threading. Every callback runs on a grpc thread and must not block: the Swift side only
// records the event and wakes a task. Every function may be called from any thread.
//
// Lifetime. Calls are reference counted between grpc and the owner: the owner holds one
// reference until it calls maas_grpc_*_call_release, grpc holds one until the call's on_done
// callback has returned. After on_done the shim never calls back into that call's context again,
// and after release the owner never uses the handle again; whichever comes last frees the call.
//
// Flow control. Reads are credit based: the shim reads as many messages as the owner has granted
// (an initial window, then maas_grpc_*_call_request_reads) and no more, so a slow consumer slows
// the peer through HTTP/2 flow control instead of buffering a whole stream. Writes are queued in
// order; a write returns MAAS_GRPC_WRITE_BLOCKED when the queue holds `write_window` messages, and
// on_writable fires once the queue has drained below half of that.
#ifndef CGRPCSHIM_H
#define CGRPCSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- Common ----------------------------------------------------------------------------------

/// One metadata entry. Keys are lower-case ASCII; values of keys ending in "-bin" are raw bytes
/// (grpc encodes them on the wire), others are printable ASCII. Neither is NUL-terminated.
typedef struct maas_grpc_metadata_entry {
  const char *key;
  size_t key_length;
  const uint8_t *value;
  size_t value_length;
} maas_grpc_metadata_entry;

/// A borrowed list of entries: valid only for the duration of the call that receives it.
typedef struct maas_grpc_metadata {
  const maas_grpc_metadata_entry *entries;
  size_t count;
} maas_grpc_metadata;

/// Results of the write functions.
enum {
  /// Queued; the owner may write again.
  MAAS_GRPC_WRITE_OK = 0,
  /// Queued, but the queue is full: wait for on_writable before writing more.
  MAAS_GRPC_WRITE_BLOCKED = 1,
  /// Not queued: the call has already finished, was cancelled, or its writes were closed.
  MAAS_GRPC_WRITE_CLOSED = 2,
};

/// Transport settings shared by servers and channels. Zero means "grpc's default" everywhere.
typedef struct maas_grpc_options {
  /// Largest message accepted (bytes); larger ones fail the call with RESOURCE_EXHAUSTED.
  int32_t max_receive_message_bytes;
  /// Largest message sent (bytes).
  int32_t max_send_message_bytes;
  /// Interval between keepalive pings on an idle connection (ms).
  int32_t keepalive_time_ms;
  /// How long to wait for a keepalive ack before closing the connection (ms).
  int32_t keepalive_timeout_ms;
  /// Non-zero: send keepalive pings even when no call is open (client), or accept them (server).
  int32_t keepalive_permit_without_calls;
  /// Server only: the shortest ping interval accepted from clients before they are told off (ms).
  int32_t min_ping_interval_ms;
  /// Server only: the most concurrent calls one connection may open.
  int32_t max_concurrent_streams;
  /// How many messages are read ahead of the consumer (default 16).
  int32_t read_window;
  /// How many messages may be queued for writing before writes report BLOCKED (default 16).
  int32_t write_window;
} maas_grpc_options;

// ---- Server ----------------------------------------------------------------------------------

typedef struct maas_grpc_server maas_grpc_server;
typedef struct maas_grpc_server_call maas_grpc_server_call;

/// What a server tells its owner. `server_context` is the pointer given to
/// maas_grpc_server_start; `call_context` is the pointer on_call returned for that call.
typedef struct maas_grpc_server_callbacks {
  /// A new call. The owner reads what it needs through the maas_grpc_server_call_* getters
  /// (valid only during this callback), takes a reference (the call starts with one for the
  /// owner) and returns the context that the call's other callbacks receive.
  void *(*on_call)(void *server_context, maas_grpc_server_call *call);
  /// One request message; the bytes are valid only during the callback.
  void (*on_message)(void *call_context, const uint8_t *bytes, size_t length);
  /// No more request messages: the client closed its side, or the call broke or was cancelled
  /// (on_cancel tells those apart).
  void (*on_read_closed)(void *call_context);
  /// The call was cancelled: by the client, its deadline, or the server's shutdown.
  void (*on_cancel)(void *call_context);
  /// Writes may resume after a MAAS_GRPC_WRITE_BLOCKED.
  void (*on_writable)(void *call_context);
  /// The last callback for this call.
  void (*on_done)(void *call_context);
  /// The server has shut down and every call has completed; the last server callback.
  void (*on_stopped)(void *server_context);
} maas_grpc_server_callbacks;

/// Binds `address` ("host:port"; port 0 picks a free one), starts serving and returns the server,
/// or NULL with a message in `error` (NUL-terminated, truncated to `error_capacity`).
maas_grpc_server *maas_grpc_server_start(const char *address, const maas_grpc_options *options,
                                         const maas_grpc_server_callbacks *callbacks,
                                         void *server_context, char *error,
                                         size_t error_capacity);

/// The port the server is bound to.
int32_t maas_grpc_server_port(const maas_grpc_server *server);

/// Stops accepting calls and lets in-flight calls finish; after `grace_ms` (negative: forever)
/// the remaining calls are cancelled. Returns at once; on_stopped reports completion. Calling it
/// again cancels the calls still in flight at once.
void maas_grpc_server_shutdown(maas_grpc_server *server, int64_t grace_ms);

/// Frees the server. Only after on_stopped has been called.
void maas_grpc_server_destroy(maas_grpc_server *server);

// Getters valid during on_call only. Strings are not NUL-terminated.
const char *maas_grpc_server_call_method(const maas_grpc_server_call *call, size_t *length);
const char *maas_grpc_server_call_peer(const maas_grpc_server_call *call, size_t *length);
/// Fills `buffer` with up to `capacity` entries and returns the total count; the entries point
/// into the call and stay valid during on_call.
size_t maas_grpc_server_call_metadata(const maas_grpc_server_call *call,
                                      maas_grpc_metadata_entry *buffer, size_t capacity);
/// Nanoseconds until the client's deadline (at least 1), or -1 when it set none.
int64_t maas_grpc_server_call_timeout_ns(const maas_grpc_server_call *call);

/// Queues one response message (copied). `initial_metadata` may be NULL; it is used only if
/// initial metadata has not been sent yet and goes out with this message.
int maas_grpc_server_call_write(maas_grpc_server_call *call,
                                const maas_grpc_metadata *initial_metadata,
                                const uint8_t *bytes, size_t length);

/// Queues the status and trailers after every queued message; later writes are CLOSED.
/// `last_message` (NULL for none) is queued first and leaves together with the status, which is
/// how a unary response goes out in one batch. `initial_metadata` as for write. Returns CLOSED if
/// the call was already finished.
int maas_grpc_server_call_finish(maas_grpc_server_call *call,
                                 const maas_grpc_metadata *initial_metadata,
                                 const uint8_t *last_message, size_t last_message_length,
                                 int32_t code, const char *message, size_t message_length,
                                 const maas_grpc_metadata *trailers);

/// Grants `count` more reads.
void maas_grpc_server_call_request_reads(maas_grpc_server_call *call, int32_t count);

/// Drops the owner's reference. The owner must have called finish first (or the call must have
/// been cancelled); a call released unfinished is finished with UNKNOWN.
void maas_grpc_server_call_release(maas_grpc_server_call *call);

// ---- Client ----------------------------------------------------------------------------------

typedef struct maas_grpc_channel maas_grpc_channel;
typedef struct maas_grpc_client_call maas_grpc_client_call;

/// What a client call tells its owner. Every callback receives the `call_context` given to
/// maas_grpc_client_call_create.
typedef struct maas_grpc_client_callbacks {
  /// The server's initial metadata. Not called for a trailers-only response.
  void (*on_initial_metadata)(void *call_context, const maas_grpc_metadata *metadata);
  /// One response message; the bytes are valid only during the callback.
  void (*on_message)(void *call_context, const uint8_t *bytes, size_t length);
  /// Writes may resume after a MAAS_GRPC_WRITE_BLOCKED.
  void (*on_writable)(void *call_context);
  /// The final status and trailers; the last callback for this call.
  void (*on_done)(void *call_context, int32_t code, const char *message, size_t message_length,
                  const maas_grpc_metadata *trailers);
} maas_grpc_client_callbacks;

/// Creates a channel to `target` (e.g. "127.0.0.1:50051", "dns:///host:port"). Plaintext: the
/// services run behind the cluster's network policy, TLS terminates at the edge.
maas_grpc_channel *maas_grpc_channel_create(const char *target, const maas_grpc_options *options);

/// Connectivity of the channel: 0 idle, 1 connecting, 2 ready, 3 transient failure, 4 shutdown.
/// A non-zero `try_to_connect` starts connecting an idle channel.
int32_t maas_grpc_channel_state(maas_grpc_channel *channel, int32_t try_to_connect);

/// Frees the channel. Calls still open on it keep it alive until they are done.
void maas_grpc_channel_destroy(maas_grpc_channel *channel);

/// Prepares a call of `method` ("/package.Service/Method") with request metadata and a timeout
/// in nanoseconds (negative: none). Nothing is sent until the first write or close_writes, so a
/// unary request leaves in as few batches as grpc allows. The call holds one reference for the
/// owner.
maas_grpc_client_call *maas_grpc_client_call_create(
    maas_grpc_channel *channel, const char *method, size_t method_length,
    const maas_grpc_metadata *metadata, int64_t timeout_ns,
    const maas_grpc_client_callbacks *callbacks, void *call_context);

/// Queues one request message (copied). A non-zero `last` also closes the request side, in the
/// same batch: how a unary request goes out.
int maas_grpc_client_call_write(maas_grpc_client_call *call, const uint8_t *bytes,
                                size_t length, int32_t last);

/// Closes the request side after every queued message (half-close).
void maas_grpc_client_call_close_writes(maas_grpc_client_call *call);

/// Grants `count` more reads.
void maas_grpc_client_call_request_reads(maas_grpc_client_call *call, int32_t count);

/// Cancels the call; on_done follows with CANCELLED unless a status already arrived.
void maas_grpc_client_call_cancel(maas_grpc_client_call *call);

/// Drops the owner's reference. A call that has not finished is cancelled.
void maas_grpc_client_call_release(maas_grpc_client_call *call);

#ifdef __cplusplus
}
#endif

#endif  // CGRPCSHIM_H
