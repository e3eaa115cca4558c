// The client half of the shim: every RPC, whatever its kind, is a generic bidirectional call
// driven by a ClientBidiReactor (see CGRPCShim.h for the contract).
#include <grpcpp/generic/generic_stub.h>
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

#include "internal.h"

using maas_shim::ContiguousBytes;

struct maas_grpc_channel {
  maas_grpc_channel(std::shared_ptr<grpc::Channel> channel, const maas_grpc_options *options)
      : channel(channel), stub(channel), read_window(maas_shim::ReadWindow(options)),
        write_window(maas_shim::WriteWindow(options)) {}

  std::shared_ptr<grpc::Channel> channel;
  grpc::GenericStub stub;
  const int read_window;
  const int write_window;
};

// One call. Operations that the owner starts from its own threads (writes, half-close, reads
// granted later) are outside grpc's reactions, so the call keeps a grpc "hold" while the owner
// may still start one; without it grpc could complete and free the stream underneath a pending
// write. The hold goes when the response stream has ended (a failed read: the status is in, so
// nothing more can be sent) and no write is in flight, or when the owner releases the call;
// grpc reports the status (OnDone) only after that.
struct maas_grpc_client_call final : public grpc::ClientBidiReactor<grpc::ByteBuffer,
                                                                      grpc::ByteBuffer> {
  maas_grpc_client_call(std::shared_ptr<grpc::Channel> channel, int read_window,
                        int write_window, const maas_grpc_client_callbacks &callbacks,
                        void *owner)
      : channel_(std::move(channel)), callbacks_(callbacks), owner_(owner),
        read_credits_(read_window), write_window_(write_window) {}

  grpc::ClientContext &context() { return context_; }

  void Prepare(grpc::GenericStub &stub, const std::string &method) {
    stub.PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    AddHold();
  }

  int Write(const uint8_t *bytes, size_t length, bool last) {
    int result = MAAS_GRPC_WRITE_OK;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (close_queued_ || write_failed_ || done_) return MAAS_GRPC_WRITE_CLOSED;
      queue_.push_back(maas_shim::CopyToByteBuffer(bytes, length));
      if (last) close_queued_ = true;
      if (static_cast<int>(queue_.size()) >= write_window_) {
        blocked_ = true;
        result = MAAS_GRPC_WRITE_BLOCKED;
      }
    }
    Pump();
    return result;
  }

  void CloseWrites() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (close_queued_) return;
      close_queued_ = true;
    }
    Pump();
  }

  void RequestReads(int count) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_credits_ += count;
    }
    Pump();
  }

  void Cancel() { context_.TryCancel(); }

  void Release() {
    bool start, drop_hold;
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
      start = !started_;
      started_ = true;
      drop_hold = !hold_dropped_;
      hold_dropped_ = true;
    }
    context_.TryCancel();
    // grpc requires StartCall on every call, even one cancelled before it began.
    if (start) StartCall();
    if (drop_hold) RemoveHold();
    Unref();
  }

  // ---- Reactions ----

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    auto entries = maas_shim::Entries(context_.GetServerInitialMetadata());
    maas_grpc_metadata metadata{entries.data(), entries.size()};
    callbacks_.on_initial_metadata(owner_, &metadata);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      ContiguousBytes bytes(&read_buffer_);
      callbacks_.on_message(owner_, bytes.data(), bytes.size());
      read_buffer_.Clear();
    }
    bool drop_hold = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_in_flight_ = false;
      if (!ok) {
        reads_closed_ = true;
        write_failed_ = true;  // the call is over: later writes are refused, not queued
        drop_hold = TakeHoldIfIdle();
      }
    }
    if (drop_hold) {
      RemoveHold();
      return;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    bool notify_writable = false, drop_hold = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      write_in_flight_ = false;
      if (!ok) {
        // The call is over (its status is on the way); nothing more can be sent.
        write_failed_ = true;
        queue_.clear();
      }
      if (blocked_ && static_cast<int>(queue_.size()) <= write_window_ / 2) {
        blocked_ = false;
        notify_writable = true;
      }
      drop_hold = reads_closed_ && TakeHoldIfIdle();
    }
    if (notify_writable) callbacks_.on_writable(owner_);
    if (drop_hold) {
      RemoveHold();
      return;
    }
    Pump();
  }

  void OnDone(const grpc::Status &status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    auto entries = maas_shim::Entries(context_.GetServerTrailingMetadata());
    maas_grpc_metadata trailers{entries.data(), entries.size()};
    const std::string &message = status.error_message();
    callbacks_.on_done(owner_, status.error_code(), message.data(), message.size(), &trailers);
    Unref();
  }

 private:
  // Starts whatever the state allows: the call itself on the first write or half-close, the next
  // write (a last message and the half-close go together), and the next read. grpc allows one
  // read and one write in flight; Start* runs outside `mu_` since grpc may react inline.
  void Pump() {
    const grpc::ByteBuffer *write = nullptr;
    bool last = false, writes_done = false, read = false, start = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_ || released_ || hold_dropped_) return;
      if (!started_) {
        if (queue_.empty() && !close_queued_) return;
        started_ = true;
        start = true;
      }
      if (!write_in_flight_ && !close_sent_ && !write_failed_) {
        if (!queue_.empty()) {
          write = &queue_.front();
          write_in_flight_ = true;
          if (queue_.size() == 1 && close_queued_) {
            last = true;
            close_sent_ = true;
          }
        } else if (close_queued_) {
          writes_done = true;
          close_sent_ = true;
        }
      }
      if (!read_in_flight_ && !reads_closed_ && read_credits_ > 0) {
        read_in_flight_ = true;
        --read_credits_;
        read = true;
      }
    }
    if (write && last) {
      StartWriteLast(write, grpc::WriteOptions());
    } else if (write) {
      StartWrite(write);
    } else if (writes_done) {
      StartWritesDone();
    }
    if (read) StartRead(&read_buffer_);
    if (start) StartCall();
  }

  // Under mu_: whether the hold should go now, marking it gone.
  bool TakeHoldIfIdle() {
    if (hold_dropped_ || write_in_flight_) return false;
    hold_dropped_ = true;
    return true;
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::shared_ptr<grpc::Channel> channel_;  // keeps the channel alive while the call runs
  grpc::ClientContext context_;
  const maas_grpc_client_callbacks callbacks_;
  void *const owner_;
  // One reference for the owner, one for grpc (dropped in OnDone).
  std::atomic<int> refs_{2};

  std::mutex mu_;
  grpc::ByteBuffer read_buffer_;
  int read_credits_;
  bool read_in_flight_ = false;
  bool reads_closed_ = false;
  const int write_window_;
  std::deque<grpc::ByteBuffer> queue_;
  bool write_in_flight_ = false;
  bool write_failed_ = false;
  bool blocked_ = false;
  bool close_queued_ = false;
  bool close_sent_ = false;
  bool started_ = false;
  bool released_ = false;
  bool hold_dropped_ = false;
  bool done_ = false;
};

namespace maas_shim {

namespace {

struct Anchor {
  Anchor()
      : channel(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials())),
        stub(channel), request(maas_shim::CopyToByteBuffer(nullptr, 0)) {}
  std::shared_ptr<grpc::Channel> channel;
  grpc::GenericStub stub;
  grpc::ClientContext context;
  grpc::ByteBuffer request, response;
};

// Reachable for the life of the process on purpose (see internal.h).
Anchor *g_anchor = nullptr;

}  // namespace

void AnchorCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Debian builds abseil without NDEBUG, so every absl::Mutex that grpc takes also records the
    // lock order in one process-wide graph behind a global lock (GraphCycles::GetId was 1 to 2%
    // of each service's profile, and a point where all of grpc's threads meet). Lock-order
    // checking is a development aid; a server does not run with it.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    // The call fails at once (nothing listens on port 1, and its deadline has passed); what
    // matters is that it went through the pool, which makes the channel hold a reference.
    g_anchor = new Anchor();
    g_anchor->context.set_deadline(std::chrono::system_clock::now());
    g_anchor->stub.UnaryCall(&g_anchor->context, "/maas.shim.Anchor/Anchor", grpc::StubOptions(),
                             &g_anchor->request, &g_anchor->response, [](grpc::Status) {});
  });
}

}  // namespace maas_shim

// ---- C interface ----------------------------------------------------------------------------

extern "C" {

maas_grpc_channel *maas_grpc_channel_create(const char *target,
                                            const maas_grpc_options *options) {
  maas_shim::AnchorCallbackQueue();
  grpc::ChannelArguments arguments;
  if (options) {
    if (options->max_receive_message_bytes > 0)
      arguments.SetMaxReceiveMessageSize(options->max_receive_message_bytes);
    if (options->max_send_message_bytes > 0)
      arguments.SetMaxSendMessageSize(options->max_send_message_bytes);
    if (options->keepalive_time_ms > 0)
      // Without this grpc stops pinging after two pings on a connection with no data.
      arguments.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  maas_shim::ApplyCommonOptions(options, [&](const char *key, int value) {
    arguments.SetInt(key, value);
  });
  // Calls spread over every address the target resolves to (the pods behind a headless
  // Service), not only the first: with pick_first, grpc's default, each caller would pin all its
  // calls to one replica of the service it calls. One address behaves as before.
  arguments.SetLoadBalancingPolicyName("round_robin");
  auto channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  return new maas_grpc_channel(std::move(channel), options);
}

int32_t maas_grpc_channel_state(maas_grpc_channel *channel, int32_t try_to_connect) {
  return static_cast<int32_t>(channel->channel->GetState(try_to_connect != 0));
}

void maas_grpc_channel_destroy(maas_grpc_channel *channel) { delete channel; }

maas_grpc_client_call *maas_grpc_client_call_create(
    maas_grpc_channel *channel, const char *method, size_t method_length,
    const maas_grpc_metadata *metadata, int64_t timeout_ns,
    const maas_grpc_client_callbacks *callbacks, void *call_context) {
  auto *call = new maas_grpc_client_call(channel->channel, channel->read_window,
                                         channel->write_window, *callbacks, call_context);
  grpc::ClientContext &context = call->context();
  maas_shim::ForEachEntry(metadata, [&](std::string key, std::string value) {
    context.AddMetadata(key, value);
  });
  if (timeout_ns >= 0) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::nanoseconds(timeout_ns));
  }
  call->Prepare(channel->stub, std::string(method, method_length));
  return call;
}

int maas_grpc_client_call_write(maas_grpc_client_call *call, const uint8_t *bytes,
                                size_t length, int32_t last) {
  return call->Write(bytes, length, last != 0);
}

void maas_grpc_client_call_close_writes(maas_grpc_client_call *call) { call->CloseWrites(); }

void maas_grpc_client_call_request_reads(maas_grpc_client_call *call, int32_t count) {
  call->RequestReads(count);
}

void maas_grpc_client_call_cancel(maas_grpc_client_call *call) { call->Cancel(); }

void maas_grpc_client_call_release(maas_grpc_client_call *call) { call->Release(); }

}  // extern "C"
