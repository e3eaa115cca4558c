// The server's types: the server itself and one accepted call (a generic bidi reactor). Split
// from server.cc, which holds the C interface, because the reactor is a concern of its own.
#ifndef CGRPCSHIM_SERVER_TYPES_H
#define CGRPCSHIM_SERVER_TYPES_H

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "internal.h"

struct maas_grpc_server_call;

namespace maas_shim {

// A queued response: a message, or the final status (always last).
struct PendingWrite {
  bool is_finish = false;
  grpc::ByteBuffer message;
  grpc::Status status;
};

}  // namespace maas_shim

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
    maas_shim::PendingWrite pending;
    pending.message = maas_shim::CopyToByteBuffer(bytes, length);
    return Enqueue(initial, nullptr, std::move(pending));
  }

  int Finish(const maas_grpc_metadata *initial, const uint8_t *last_message,
             size_t last_length, const maas_grpc_metadata *trailers, grpc::Status status) {
    maas_shim::PendingWrite pending;
    pending.is_finish = true;
    pending.status = std::move(status);
    std::optional<maas_shim::PendingWrite> last;
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
      maas_shim::ContiguousBytes bytes(&read_buffer_);
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
              maas_shim::PendingWrite pending, std::optional<maas_shim::PendingWrite> before = std::nullopt) {
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
    const maas_shim::PendingWrite *message = nullptr;
    const grpc::Status *status = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (write_in_flight_ || finish_started_ || queue_.empty()) return;
      maas_shim::PendingWrite &head = queue_.front();
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
  std::deque<maas_shim::PendingWrite> queue_;
  bool write_in_flight_ = false;
  bool write_failed_ = false;
  bool blocked_ = false;
  bool initial_metadata_added_ = false;
  bool finish_queued_ = false;
  bool finish_started_ = false;
};


#endif  // CGRPCSHIM_SERVER_TYPES_H
