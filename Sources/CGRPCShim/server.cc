// The server half of the shim: one CallbackGenericService accepts every method and turns each
// call into callbacks to the owner (see CGRPCShim.h for the contract).
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "internal.h"

using maas_shim::ContiguousBytes;

struct maas_grpc_server_call;

namespace {

// A queued response: a message, or the final status (always last).
struct PendingWrite {
  bool is_finish = false;
  grpc::ByteBuffer message;
  grpc::Status status;
};

}  // namespace

struct maas_grpc_server {
  maas_grpc_server(const maas_grpc_server_callbacks &callbacks, void *context,
                   const maas_grpc_options *options)
      : callbacks(callbacks), context(context),
        read_window(maas_shim::ReadWindow(options)),
        write_window(maas_shim::WriteWindow(options)), service(this) {}

  class GenericService final : public grpc::CallbackGenericService {
   public:
    explicit GenericService(maas_grpc_server *server) : server_(server) {}
    grpc::ServerGenericBidiReactor *CreateReactor(
        grpc::GenericCallbackServerContext *context) override;

   private:
    maas_grpc_server *server_;
  };

  void Register(maas_grpc_server_call *call) {
    std::lock_guard<std::mutex> lock(calls_mu);
    live_calls.insert(call);
  }
  void Unregister(maas_grpc_server_call *call) {
    std::lock_guard<std::mutex> lock(calls_mu);
    live_calls.erase(call);
  }
  void CancelLiveCalls();

  const maas_grpc_server_callbacks callbacks;
  void *const context;
  const int read_window;
  const int write_window;
  GenericService service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::atomic<bool> shutdown_started{false};

  // Calls between CreateReactor and OnDone, so that a second shutdown can cancel them.
  std::mutex calls_mu;
  std::unordered_set<maas_grpc_server_call *> live_calls;
};

// One call. grpc allows one read and one write in flight at a time, so writes queue here and
// the next starts when the previous completes. Start* calls are made outside `mu_`, because grpc
// may run a reaction inline on the calling thread.
struct maas_grpc_server_call final : public grpc::ServerGenericBidiReactor {
  maas_grpc_server_call(maas_grpc_server *server, grpc::GenericCallbackServerContext *context)
      : server_(server), context_(context), read_credits_(server->read_window) {}

  void Begin() {
    server_->Register(this);
    owner_ = server_->callbacks.on_call(server_->context, this);
    MaybeStartRead();
  }

  grpc::GenericCallbackServerContext *context() const { return context_; }

  int Write(const maas_grpc_metadata *initial, const uint8_t *bytes, size_t length) {
    PendingWrite pending;
    pending.message = maas_shim::CopyToByteBuffer(bytes, length);
    return Enqueue(initial, nullptr, std::move(pending));
  }

  int Finish(const maas_grpc_metadata *initial, const uint8_t *last_message,
             size_t last_length, const maas_grpc_metadata *trailers, grpc::Status status) {
    PendingWrite pending;
    pending.is_finish = true;
    pending.status = std::move(status);
    std::optional<PendingWrite> last;
    if (last_message) {
      last.emplace();
      last->message = maas_shim::CopyToByteBuffer(last_message, last_length);
    }
    return Enqueue(initial, trailers, std::move(pending), std::move(last));
  }

  void RequestReads(int count) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_credits_ += count;
    }
    MaybeStartRead();
  }

  void Release() {
    bool finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished = finish_queued_;
    }
    // A call must be finished for grpc to complete it; an owner that let go without a status
    // would otherwise hold the server's shutdown forever.
    if (!finished) {
      Finish(nullptr, nullptr, 0, nullptr,
             grpc::Status(grpc::StatusCode::UNKNOWN, "the handler ended without a status"));
    }
    Unref();
  }

  void Cancel() { context_->TryCancel(); }

  // ---- Reactions ----

  void OnReadDone(bool ok) override {
    if (ok) {
      ContiguousBytes bytes(&read_buffer_);
      server_->callbacks.on_message(owner_, bytes.data(), bytes.size());
      read_buffer_.Clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        read_in_flight_ = false;
      }
      MaybeStartRead();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_in_flight_ = false;
      reads_closed_ = true;
    }
    server_->callbacks.on_read_closed(owner_);
  }

  void OnWriteDone(bool ok) override {
    bool notify_writable = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      write_in_flight_ = false;
      if (!ok) {
        // The stream is broken (usually cancelled): drop the messages, keep the status, which
        // grpc still needs before it completes the call.
        write_failed_ = true;
        while (!queue_.empty() && !queue_.front().is_finish) queue_.pop_front();
      }
      if (blocked_ && static_cast<int>(queue_.size()) <= server_->write_window / 2) {
        blocked_ = false;
        notify_writable = true;
      }
    }
    if (notify_writable) server_->callbacks.on_writable(owner_);
    StartNextWrite();
  }

  void OnCancel() override { server_->callbacks.on_cancel(owner_); }

  void OnDone() override {
    server_->Unregister(this);
    server_->callbacks.on_done(owner_);
    Unref();
  }

 private:
  // Queues `pending`, after `before` when given (both or neither: one lock, so the pair leaves
  // as one WriteAndFinish).
  int Enqueue(const maas_grpc_metadata *initial, const maas_grpc_metadata *trailers,
              PendingWrite pending, std::optional<PendingWrite> before = std::nullopt) {
    const bool is_finish = pending.is_finish;
    int result = MAAS_GRPC_WRITE_OK;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_queued_) return MAAS_GRPC_WRITE_CLOSED;
      if (write_failed_ && !is_finish) return MAAS_GRPC_WRITE_CLOSED;
      if (!initial_metadata_added_) {
        // Initial metadata goes out with the first message or the status, as grpc C++'s own
        // servers send it, so a unary response leaves in one batch.
        maas_shim::ForEachEntry(initial, [this](std::string key, std::string value) {
          context_->AddInitialMetadata(key, value);
        });
        initial_metadata_added_ = true;
      }
      if (is_finish) {
        maas_shim::ForEachEntry(trailers, [this](std::string key, std::string value) {
          context_->AddTrailingMetadata(key, value);
        });
        finish_queued_ = true;
      }
      if (before) queue_.push_back(std::move(*before));
      queue_.push_back(std::move(pending));
      if (!is_finish && static_cast<int>(queue_.size()) >= server_->write_window) {
        blocked_ = true;
        result = MAAS_GRPC_WRITE_BLOCKED;
      }
    }
    StartNextWrite();
    return result;
  }

  // Starts the write at the head of the queue unless one is in flight. A message followed by the
  // status goes out as one WriteAndFinish.
  void StartNextWrite() {
    const PendingWrite *message = nullptr;
    const grpc::Status *status = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (write_in_flight_ || finish_started_ || queue_.empty()) return;
      PendingWrite &head = queue_.front();
      if (head.is_finish) {
        status = &head.status;
        finish_started_ = true;
      } else {
        message = &head;
        write_in_flight_ = true;
        if (queue_.size() >= 2 && queue_[1].is_finish) {
          status = &queue_[1].status;
          finish_started_ = true;
        }
      }
    }
    // The deque's elements stay put while they are not popped, and only OnWriteDone pops.
    if (message && status) {
      StartWriteAndFinish(&message->message, grpc::WriteOptions(), *status);
    } else if (message) {
      StartWrite(&message->message);
    } else {
      grpc::ServerGenericBidiReactor::Finish(*status);
    }
  }

  void MaybeStartRead() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (read_in_flight_ || reads_closed_ || finish_started_ || read_credits_ <= 0) return;
      read_in_flight_ = true;
      --read_credits_;
    }
    StartRead(&read_buffer_);
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  maas_grpc_server *const server_;
  grpc::GenericCallbackServerContext *const context_;
  void *owner_ = nullptr;
  // One reference for the owner, one for grpc (dropped in OnDone).
  std::atomic<int> refs_{2};

  std::mutex mu_;
  grpc::ByteBuffer read_buffer_;
  int read_credits_;
  bool read_in_flight_ = false;
  bool reads_closed_ = false;
  std::deque<PendingWrite> queue_;
  bool write_in_flight_ = false;
  bool write_failed_ = false;
  bool blocked_ = false;
  bool initial_metadata_added_ = false;
  bool finish_queued_ = false;
  bool finish_started_ = false;
};

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
