// A harness that drives CGRPCShim through its C interface only, with no Swift anywhere:
//
//   shim_harness serve PORT      an echo server (every request message is sent straight back;
//                                the status follows the client's half-close). The benchmark's
//                                "pure C++" limit: no Swift on the server path.
//   shim_harness exercise N      N calls against an in-process echo server, of every shape the
//                                transport produces: unary, streaming, cancelled mid-call,
//                                cancelled before starting, expired deadlines, released early.
//                                Run under valgrind or LeakSanitizer by `make leak-check`.
//
// It prints "N passed, N failed" and exits non-zero on any failure.
#include <CGRPCShim.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <pthread.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---- Echo server -------------------------------------------------------------------------

struct ServerCall {
  maas_grpc_server_call *call;
};

struct ServerState {
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
};

void *OnCall(void *, maas_grpc_server_call *call) { return new ServerCall{call}; }

void OnServerMessage(void *context, const uint8_t *bytes, size_t length) {
  auto *call = static_cast<ServerCall *>(context);
  maas_grpc_server_call_write(call->call, nullptr, bytes, length);
  maas_grpc_server_call_request_reads(call->call, 1);
}

void OnReadClosed(void *context) {
  auto *call = static_cast<ServerCall *>(context);
  maas_grpc_server_call_finish(call->call, nullptr, nullptr, 0, 0, "", 0, nullptr);
}

void OnServerCancel(void *) {}
void OnServerWritable(void *) {}

void OnServerDone(void *context) {
  auto *call = static_cast<ServerCall *>(context);
  maas_grpc_server_call_release(call->call);
  delete call;
}

void OnStopped(void *context) {
  auto *state = static_cast<ServerState *>(context);
  std::lock_guard<std::mutex> lock(state->mu);
  state->stopped = true;
  state->cv.notify_all();
}

const maas_grpc_server_callbacks kServerCallbacks = {
    OnCall, OnServerMessage, OnReadClosed, OnServerCancel, OnServerWritable, OnServerDone,
    OnStopped};

maas_grpc_server *StartServer(const std::string &address, ServerState *state) {
  char error[256] = {0};
  maas_grpc_options options = {};
  maas_grpc_server *server =
      maas_grpc_server_start(address.c_str(), &options, &kServerCallbacks, state, error,
                             sizeof error);
  if (!server) std::fprintf(stderr, "server: %s\n", error);
  return server;
}

void StopServer(maas_grpc_server *server, ServerState *state) {
  maas_grpc_server_shutdown(server, 1000);
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [state] { return state->stopped; });
  lock.unlock();
  maas_grpc_server_destroy(server);
}

// ---- Client calls ------------------------------------------------------------------------

struct ClientCall {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int code = -1;
  int messages = 0;
  bool saw_initial_metadata = false;
  maas_grpc_client_call *call = nullptr;
};

void OnInitialMetadata(void *context, const maas_grpc_metadata *) {
  static_cast<ClientCall *>(context)->saw_initial_metadata = true;
}

void OnClientMessage(void *context, const uint8_t *, size_t) {
  auto *call = static_cast<ClientCall *>(context);
  call->messages++;
  maas_grpc_client_call_request_reads(call->call, 1);  // consumed: read one more
}

void OnClientWritable(void *) {}

void OnClientDone(void *context, int32_t code, const char *, size_t, const maas_grpc_metadata *) {
  auto *call = static_cast<ClientCall *>(context);
  std::lock_guard<std::mutex> lock(call->mu);
  call->code = code;
  call->done = true;
  call->cv.notify_all();
}

const maas_grpc_client_callbacks kClientCallbacks = {OnInitialMetadata, OnClientMessage,
                                                     OnClientWritable, OnClientDone};

const char kMethod[] = "/maas.echo.v1.Echo/Update";

enum class Shape { kUnary, kStream, kCancelMidCall, kCancelUnstarted, kDeadline, kReleaseEarly };

// Runs one call of the given shape and says whether it ended as that shape should.
bool RunCall(maas_grpc_channel *channel, Shape shape) {
  ClientCall state;
  const uint8_t payload[] = {0x0a, 0x05, 'h', 'e', 'l', 'l', 'o'};  // EchoRequest{text:"hello"}
  maas_grpc_metadata_entry entry = {"x-test", 6, reinterpret_cast<const uint8_t *>("1"), 1};
  maas_grpc_metadata metadata = {&entry, 1};
  int64_t timeout = shape == Shape::kDeadline ? 1 : 10'000'000'000;
  maas_grpc_client_call *call = maas_grpc_client_call_create(
      channel, kMethod, sizeof kMethod - 1, &metadata, timeout, &kClientCallbacks, &state);
  state.call = call;
  int expected_code = 0, expected_messages = 1;
  switch (shape) {
    case Shape::kUnary:
      maas_grpc_client_call_write(call, payload, sizeof payload, 1);
      break;
    case Shape::kStream:
      for (int i = 0; i < 20; ++i) maas_grpc_client_call_write(call, payload, sizeof payload, 0);
      maas_grpc_client_call_close_writes(call);
      expected_messages = 20;
      break;
    case Shape::kCancelMidCall:
      maas_grpc_client_call_write(call, payload, sizeof payload, 0);
      maas_grpc_client_call_cancel(call);
      expected_code = 1;  // CANCELLED
      expected_messages = -1;
      break;
    case Shape::kCancelUnstarted: {
      // Released before anything was sent: grpc still reports it, as CANCELLED.
      maas_grpc_client_call_release(call);
      std::unique_lock<std::mutex> lock(state.mu);
      state.cv.wait(lock, [&] { return state.done; });
      return state.code == 1;
    }
    case Shape::kDeadline:
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      maas_grpc_client_call_write(call, payload, sizeof payload, 0);
      expected_code = 4;  // DEADLINE_EXCEEDED
      expected_messages = -1;
      break;
    case Shape::kReleaseEarly: {
      // The owner lets go mid-call; the call is cancelled and still reports once.
      maas_grpc_client_call_write(call, payload, sizeof payload, 0);
      maas_grpc_client_call_release(call);
      std::unique_lock<std::mutex> lock(state.mu);
      state.cv.wait(lock, [&] { return state.done; });
      return state.code == 0 || state.code == 1;
    }
  }
  std::unique_lock<std::mutex> lock(state.mu);
  bool finished = state.cv.wait_for(lock, std::chrono::seconds(20), [&] { return state.done; });
  lock.unlock();
  maas_grpc_client_call_release(call);
  if (!finished) {
    std::fprintf(stderr, "call of shape %d never finished\n", static_cast<int>(shape));
    // The call still refers to `state`; wait for its on_done before `state` goes.
    std::unique_lock<std::mutex> relock(state.mu);
    state.cv.wait(relock, [&] { return state.done; });
    return false;
  }
  bool ok = state.code == expected_code &&
            (expected_messages < 0 || state.messages == expected_messages);
  if (!ok) {
    std::fprintf(stderr, "shape %d: code %d (want %d), %d messages (want %d)\n",
                 static_cast<int>(shape), state.code, expected_code, state.messages,
                 expected_messages);
  }
  return ok;
}

int Exercise(int count) {
  ServerState server_state;
  maas_grpc_server *server = StartServer("127.0.0.1:0", &server_state);
  if (!server) return 2;
  std::string target = "127.0.0.1:" + std::to_string(maas_grpc_server_port(server));
  maas_grpc_options options = {};
  maas_grpc_channel *channel = maas_grpc_channel_create(target.c_str(), &options);

  std::atomic<int> passed{0}, failed{0};
  const Shape shapes[] = {Shape::kUnary,          Shape::kStream,   Shape::kCancelMidCall,
                          Shape::kCancelUnstarted, Shape::kDeadline, Shape::kReleaseEarly};
  std::vector<std::thread> workers;
  const int threads = 4;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < count; i += threads) {
        (RunCall(channel, shapes[i % 6]) ? passed : failed)++;
      }
    });
  }
  for (auto &worker : workers) worker.join();
  maas_grpc_channel_destroy(channel);
  StopServer(server, &server_state);
  std::printf("%d passed, %d failed\n", passed.load(), failed.load());
  return failed.load() == 0 ? 0 : 1;
}

std::atomic<bool> g_stop{false};

int Serve(const std::string &port) {
  // A process started from Swift's async code inherits the starting thread's blocked signals
  // (Foundation's Process passes the mask on), and a server that never sees SIGTERM outlives
  // whoever started it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  ServerState state;
  maas_grpc_server *server = StartServer("127.0.0.1:" + port, &state);
  if (!server) return 2;
  std::printf("listening on 127.0.0.1:%d\n", maas_grpc_server_port(server));
  std::fflush(stdout);
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  StopServer(server, &state);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 3 && std::strcmp(argv[1], "serve") == 0) return Serve(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "exercise") == 0) return Exercise(std::atoi(argv[2]));
  std::fprintf(stderr, "usage: %s serve PORT | exercise N\n", argv[0]);
  return 2;
}
