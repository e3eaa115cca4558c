// list_load: the load of gateway-bench's gRPC cells, in C++ over grpc C++ (no Swift), as pgbench
// is the load of its own cells in C: closed-loop callers sending one unary request, encoded
// once, and checking each answer's shape on the wire. A load generator shares the two cores with
// what it measures; this one takes less of them than the Swift callers did (see gateway-bench).
//
//   list_load TARGET METHOD REQUEST_HEX PAGE_SIZE CALLERS WARM_UP_S SECONDS TIMEOUT_MS [KEY VALUE]...
//
// KEY VALUE pairs are request metadata (e.g. authorization "Bearer <key>"). Every call has a
// deadline of TIMEOUT_MS. An answer counts only when it is a ListModelsResponse with PAGE_SIZE
// models (field 1) and a next-page token (field 2): a short page would be cheaper.
//
// It writes to stdout, one line each, flushed as it goes:
//   measuring                    the warm-up is over, the measured phase starts
//   measured                     every call the measured phase started has finished
//   result CALLS ERRORS ELAPSED_NS
//   error TEXT                   the first failure of the measured phase, if any
//   latencies NS NS ...          of the measured phase's answered calls
// Calls are measured as gateway-bench's Swift loop does: those started before the phase's end,
// over the time until the last of them finished.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Counts the models (field 1) and whether the next-page token (field 2) is set, without decoding
// the models; false for anything that is not a message of that shape.
bool IsFullPage(const std::vector<uint8_t> &bytes, int page_size) {
  size_t i = 0;
  auto varint = [&](uint64_t *value) {
    *value = 0;
    for (int shift = 0; i < bytes.size() && shift < 64; shift += 7) {
      uint8_t byte = bytes[i++];
      *value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  };
  int models = 0;
  bool next_page = false;
  while (i < bytes.size()) {
    uint64_t tag, length;
    if (!varint(&tag) || (tag & 7) != 2 || !varint(&length) || length > bytes.size() - i) return false;
    if ((tag >> 3) == 1) {
      models++;
    } else if ((tag >> 3) == 2) {
      next_page = length > 0;
    } else {
      return false;
    }
    i += length;
  }
  return models == page_size && next_page;
}

struct Run {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  std::string method;
  grpc::ByteBuffer request;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::chrono::milliseconds timeout;
  int page_size;

  // The phase: calls started before `end` belong to it. Set by main while no call is running.
  bool measuring = false;
  Clock::time_point end;

  std::mutex mu;
  std::condition_variable idle_cv;
  int running = 0;  // callers whose loop has not stopped
};

// One closed-loop caller; its callbacks never overlap, so it needs no lock of its own.
struct Caller {
  Run *run;
  std::unique_ptr<grpc::ClientContext> context;
  grpc::ByteBuffer response;
  Clock::time_point started;
  std::vector<int64_t> latencies;
  int64_t errors = 0;
  std::string first_error;

  void Next() {
    started = Clock::now();
    if (started >= run->end) {
      std::lock_guard<std::mutex> lock(run->mu);
      if (--run->running == 0) run->idle_cv.notify_all();
      return;
    }
    context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + run->timeout);
    for (auto &[key, value] : run->metadata) context->AddMetadata(key, value);
    run->stub->UnaryCall(context.get(), run->method, grpc::StubOptions(), &run->request, &response,
                         [this](grpc::Status status) { Done(std::move(status)); });
  }

  void Done(grpc::Status status) {
    auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count();
    std::string failure;
    if (!status.ok()) {
      failure = "status " + std::to_string(status.error_code()) + ": " + status.error_message();
    } else {
      std::vector<grpc::Slice> slices;
      std::vector<uint8_t> bytes;
      if (response.Dump(&slices).ok())
        for (auto &slice : slices) bytes.insert(bytes.end(), slice.begin(), slice.end());
      if (!IsFullPage(bytes, run->page_size)) failure = "an answer that is not a full first page";
    }
    if (run->measuring) {
      if (failure.empty()) {
        latencies.push_back(latency);
      } else if (errors++ == 0) {
        first_error = failure;
      }
    }
    Next();
  }
};

// Runs every caller until `end`, then waits until each has stopped.
void Drive(Run &run, std::vector<std::unique_ptr<Caller>> &callers, Clock::time_point end) {
  run.end = end;
  run.running = static_cast<int>(callers.size());
  for (auto &caller : callers) caller->Next();
  std::unique_lock<std::mutex> lock(run.mu);
  run.idle_cv.wait(lock, [&] { return run.running == 0; });
}

std::vector<uint8_t> FromHex(const std::string &hex) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(std::stoi(hex.substr(i, 2), nullptr, 16));
  return bytes;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 9 || (argc - 9) % 2 != 0) {
    std::fprintf(stderr,
                 "usage: %s TARGET METHOD REQUEST_HEX PAGE_SIZE CALLERS WARM_UP_S SECONDS TIMEOUT_MS [KEY VALUE]...\n",
                 argv[0]);
    return 2;
  }
  Run run;
  run.channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  run.stub = std::make_unique<grpc::GenericStub>(run.channel);
  run.method = argv[2];
  auto request = FromHex(argv[3]);
  grpc::Slice slice(request.data(), request.size());
  run.request = grpc::ByteBuffer(&slice, 1);
  run.page_size = std::atoi(argv[4]);
  int callers_count = std::atoi(argv[5]);
  auto warm_up = std::chrono::seconds(std::atoi(argv[6]));
  auto seconds = std::chrono::seconds(std::atoi(argv[7]));
  run.timeout = std::chrono::milliseconds(std::atoi(argv[8]));
  for (int i = 9; i + 1 < argc; i += 2) run.metadata.emplace_back(argv[i], argv[i + 1]);
  if (callers_count < 1 || run.page_size < 1) {
    std::fprintf(stderr, "list_load: CALLERS and PAGE_SIZE must be at least 1\n");
    return 2;
  }
  if (!run.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "list_load: could not connect to %s\n", argv[1]);
    return 1;
  }

  std::vector<std::unique_ptr<Caller>> callers;
  for (int i = 0; i < callers_count; i++) {
    callers.push_back(std::make_unique<Caller>());
    callers.back()->run = &run;
    callers.back()->latencies.reserve(65536);
  }
  if (warm_up.count() > 0) Drive(run, callers, Clock::now() + warm_up);

  run.measuring = true;
  std::printf("measuring\n");
  std::fflush(stdout);
  auto start = Clock::now();
  Drive(run, callers, start + seconds);
  auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  std::printf("measured\n");
  std::fflush(stdout);

  int64_t calls = 0, errors = 0;
  std::string first_error;
  for (auto &caller : callers) {
    calls += static_cast<int64_t>(caller->latencies.size());
    errors += caller->errors;
    if (first_error.empty()) first_error = caller->first_error;
  }
  std::printf("result %lld %lld %lld\n", static_cast<long long>(calls), static_cast<long long>(errors),
              static_cast<long long>(elapsed));
  if (!first_error.empty()) std::printf("error %s\n", first_error.c_str());
  std::printf("latencies");
  for (auto &caller : callers)
    for (auto latency : caller->latencies) std::printf(" %lld", static_cast<long long>(latency));
  std::printf("\n");
  std::fflush(stdout);
  return 0;
}
