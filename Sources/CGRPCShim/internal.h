// Helpers shared by the server and the client halves of the shim. Not part of the C interface.
#ifndef CGRPCSHIM_INTERNAL_H
#define CGRPCSHIM_INTERNAL_H

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>
#include <vector>

#include "include/CGRPCShim.h"

namespace maas_shim {

constexpr int kDefaultWindow = 16;

// Keeps grpc's shared callback thread pool referenced for the life of the process.
//
// grpc++ 1.51 runs callback-API reactions on a pool (CallbackAlternativeCQ) that is reference
// counted by the channels and servers using it. When the last reference goes on one of the
// pool's own threads (a call's OnDone freeing the call, and with it the last shared_ptr to its
// channel), the pool joins that very thread, the join fails silently, and the queue is freed
// under it: "ref_counted.h:183 assertion failed: prior > 0" and an abort (grpc PR #32584, fixed
// in later releases). One channel that has made a callback call and is never destroyed holds a
// reference for good, so the last one is never dropped. Remove when Debian ships grpc >= 1.54.
//
// The same first call also turns abseil's lock-order (deadlock) tracking off for the process
// (see client.cc).
void AnchorCallbackQueue();

inline int ReadWindow(const maas_grpc_options *options) {
  return options && options->read_window > 0 ? options->read_window : kDefaultWindow;
}

inline int WriteWindow(const maas_grpc_options *options) {
  return options && options->write_window > 0 ? options->write_window : kDefaultWindow;
}

// Turns a borrowed buffer into a ByteBuffer that owns a copy: the caller's memory is only
// valid until the C function returns, grpc needs it until the write completes.
inline grpc::ByteBuffer CopyToByteBuffer(const uint8_t *bytes, size_t length) {
  grpc::Slice slice(bytes, length);
  return grpc::ByteBuffer(&slice, 1);
}

// A received message as one contiguous run of bytes. Most messages arrive as a single slice and
// are passed on without a copy; a message split across slices is joined once.
class ContiguousBytes {
 public:
  explicit ContiguousBytes(grpc::ByteBuffer *buffer) {
    if (buffer->TrySingleSlice(&slice_).ok()) return;
    if (!buffer->DumpToSingleSlice(&slice_).ok()) slice_ = grpc::Slice();
  }
  const uint8_t *data() const { return slice_.begin(); }
  size_t size() const { return slice_.size(); }

 private:
  grpc::Slice slice_;
};

// Copies a multimap of metadata into entries that borrow from it.
template <typename Map>
std::vector<maas_grpc_metadata_entry> Entries(const Map &map) {
  std::vector<maas_grpc_metadata_entry> entries;
  entries.reserve(map.size());
  for (const auto &pair : map) {
    entries.push_back({pair.first.data(), pair.first.size(),
                       reinterpret_cast<const uint8_t *>(pair.second.data()),
                       pair.second.size()});
  }
  return entries;
}

// Calls `add(key, value)` for every entry of a borrowed list.
template <typename Add>
void ForEachEntry(const maas_grpc_metadata *metadata, Add add) {
  if (!metadata) return;
  for (size_t i = 0; i < metadata->count; ++i) {
    const maas_grpc_metadata_entry &entry = metadata->entries[i];
    add(std::string(entry.key, entry.key_length),
        std::string(reinterpret_cast<const char *>(entry.value), entry.value_length));
  }
}

// Applies the options that servers and channels share to a set of channel arguments.
template <typename SetInt>
void ApplyCommonOptions(const maas_grpc_options *options, SetInt set_int) {
  if (!options) return;
  if (options->keepalive_time_ms > 0) set_int(GRPC_ARG_KEEPALIVE_TIME_MS, options->keepalive_time_ms);
  if (options->keepalive_timeout_ms > 0)
    set_int(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options->keepalive_timeout_ms);
  if (options->keepalive_permit_without_calls)
    set_int(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

inline int64_t NanosecondsUntil(std::chrono::system_clock::time_point deadline) {
  auto now = std::chrono::system_clock::now();
  // grpc reports "no deadline" as a time far in the future.
  if (deadline - now > std::chrono::hours(24 * 365 * 10)) return -1;
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
  return left > 0 ? left : 1;
}

}  // namespace maas_shim

#endif  // CGRPCSHIM_INTERNAL_H
